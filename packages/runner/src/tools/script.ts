/**
 * A template tag for bash source: raw text, where `\${` stands for bash's `${` (a bare `${` would be
 * JavaScript's interpolation).
 */
export function script(strings: TemplateStringsArray, ...values: string[]): string {
  return String.raw(strings, ...values).replaceAll('\\${', '${');
}
