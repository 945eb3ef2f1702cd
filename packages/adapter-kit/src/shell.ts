/**
 * Quotes `value` as one literal word for `sh` and `bash`: single quotes, with each `'` written as `'\''`
 * (close, an escaped quote, reopen). Every byte but `'` is literal inside single quotes, so nothing in the
 * value is expanded, split or globbed.
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
