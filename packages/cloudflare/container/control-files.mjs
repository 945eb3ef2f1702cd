// File and backup routes: /api/read, /api/read/stream, /api/write, /api/exists, /api/mkdir,
// /api/delete, /api/backup/create (a real squashfs archive made with mksquashfs).
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { ApiError, fileError, startSse } from './control-http.mjs';

const execFileAsync = promisify(execFile);
const CHUNK_BYTES = 64 * 1024;

function requirePath(body) {
  if (typeof body.path !== 'string' || !body.path) {
    throw new ApiError(400, 'VALIDATION_FAILED', 'path is required', {});
  }
  return body.path;
}

function isText(bytes) {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return !bytes.includes(0);
  } catch {
    return false;
  }
}

async function regularFile(path) {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw fileError(error, path);
  }
  if (info.isDirectory()) throw new ApiError(400, 'IS_DIRECTORY', `Path is a directory: ${path}`, { path });
  return info;
}

export async function handleRead(body) {
  const path = requirePath(body);
  await regularFile(path);
  let bytes;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw fileError(error, path);
  }
  const binary = !isText(bytes);
  const base64 = body.encoding === 'base64' || binary;
  return {
    success: true,
    path,
    content: base64 ? bytes.toString('base64') : bytes.toString('utf8'),
    timestamp: new Date().toISOString(),
    encoding: base64 ? 'base64' : 'utf-8',
    isBinary: binary,
    mimeType: binary ? 'application/octet-stream' : 'text/plain',
    size: bytes.length,
  };
}

export async function handleReadStream(body, response) {
  const path = requirePath(body);
  const info = await regularFile(path);
  const send = startSse(response);
  await send({
    type: 'metadata',
    mimeType: 'application/octet-stream',
    size: info.size,
    isBinary: true,
    encoding: 'base64',
  });
  let bytesRead = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
      bytesRead += chunk.length;
      if (!(await send({ type: 'chunk', data: chunk.toString('base64') }))) return;
    }
    await send({ type: 'complete', bytesRead });
  } catch (error) {
    await send({ type: 'error', error: error instanceof Error ? error.message : String(error) });
  }
  response.end();
}

export async function handleWrite(body) {
  const path = requirePath(body);
  if (typeof body.content !== 'string') {
    throw new ApiError(400, 'VALIDATION_FAILED', 'content must be a string', { path });
  }
  const bytes =
    body.encoding === 'base64' ? Buffer.from(body.content, 'base64') : Buffer.from(body.content, 'utf8');
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  } catch (error) {
    throw fileError(error, path);
  }
  return { success: true, path, timestamp: new Date().toISOString(), exitCode: 0 };
}

export async function handleExists(body) {
  const path = requirePath(body);
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  return { success: true, path, exists, timestamp: new Date().toISOString() };
}

export async function handleMkdir(body) {
  const path = requirePath(body);
  try {
    await mkdir(path, { recursive: body.recursive === true });
  } catch (error) {
    throw fileError(error, path);
  }
  return {
    success: true,
    path,
    recursive: body.recursive === true,
    timestamp: new Date().toISOString(),
    exitCode: 0,
  };
}

export async function handleDelete(body) {
  const path = requirePath(body);
  await regularFile(path);
  await rm(path);
  return { success: true, path, timestamp: new Date().toISOString(), exitCode: 0 };
}

export async function handleBackupCreate(body) {
  const { dir, archivePath } = body;
  if (typeof dir !== 'string' || typeof archivePath !== 'string') {
    throw new ApiError(400, 'INVALID_BACKUP_CONFIG', 'dir and archivePath are required', {
      dir,
      archivePath,
    });
  }
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new ApiError(404, 'BACKUP_CREATE_FAILED', `Backup directory does not exist: ${dir}`, { dir });
  }
  await mkdir(dirname(archivePath), { recursive: true });
  const format = body.compression?.format ?? 'lz4';
  const threads = Math.max(1, Number(body.compression?.threads ?? 1));
  const args = [
    dir,
    archivePath,
    '-noappend',
    '-no-progress',
    '-quiet',
    '-comp',
    format,
    '-processors',
    `${threads}`,
  ];
  const excludes = Array.isArray(body.excludes) ? body.excludes : [];
  if (excludes.length) args.push('-wildcards', '-e', ...excludes);
  try {
    await execFileAsync('mksquashfs', args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    await rm(archivePath, { force: true });
    throw new ApiError(500, 'BACKUP_CREATE_FAILED', `mksquashfs failed: ${error.stderr || error.message}`, {
      dir,
      archivePath,
    });
  }
  const { size } = await stat(archivePath);
  return { success: true, sizeBytes: size, archivePath, timestamp: new Date().toISOString() };
}
