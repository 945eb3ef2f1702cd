// POST /api/execute and /api/execute/stream: run a command in the session's shell environment.
// Output is decoded as UTF-8 text, as the SDK's `ExecEvent.data` and `ExecuteResponse.stdout` are
// strings; bytes that are not UTF-8 do not survive this route (the statebox Worker encodes them).
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { startSse } from './control-http.mjs';

function run(session, body) {
  const env = { ...process.env, ...session.env, ...(body.env ?? {}) };
  const child = spawn('/bin/bash', ['-c', body.command], {
    cwd: body.cwd ?? session.cwd ?? '/workspace',
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let timer;
  if (body.timeoutMs) {
    timer = setTimeout(() => killGroup(child), body.timeoutMs);
  }
  const exited = new Promise((resolve) => {
    child.on('error', (error) => resolve({ code: 127, error }));
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + signalNumber(signal) }));
  }).finally(() => clearTimeout(timer));
  return { child, exited };
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function signalNumber(signal) {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal] ?? 0;
}

export async function handleExecute(session, body) {
  const started = Date.now();
  const { child, exited } = run(session, body);
  const stdout = new StringDecoder('utf8');
  const stderr = new StringDecoder('utf8');
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => {
    out += stdout.write(chunk);
  });
  child.stderr.on('data', (chunk) => {
    err += stderr.write(chunk);
  });
  const { code } = await exited;
  out += stdout.end();
  err += stderr.end();
  return {
    success: code === 0,
    exitCode: code,
    stdout: out,
    stderr: err,
    command: body.command,
    duration: Date.now() - started,
    timestamp: new Date().toISOString(),
  };
}

export async function handleExecuteStream(session, body, _request, response) {
  const started = Date.now();
  const send = startSse(response);
  const { child, exited } = run(session, body);
  await send({ type: 'start', timestamp: new Date().toISOString(), command: body.command, pid: child.pid });
  let out = '';
  let err = '';
  const pump = (stream, type) =>
    new Promise((resolve) => {
      const decoder = new StringDecoder('utf8');
      stream.on('data', async (chunk) => {
        const data = decoder.write(chunk);
        if (!data) return;
        if (type === 'stdout') out += data;
        else err += data;
        stream.pause();
        await send({ type, timestamp: new Date().toISOString(), data });
        stream.resume();
      });
      stream.on('end', () => {
        const rest = decoder.end();
        if (rest) send({ type, timestamp: new Date().toISOString(), data: rest });
        resolve();
      });
    });
  // A client that goes away does not stop the command (the SDK has no cancel route for it either).
  const { code } = await Promise.all([
    exited,
    pump(child.stdout, 'stdout'),
    pump(child.stderr, 'stderr'),
  ]).then(([result]) => result);
  const result = {
    success: code === 0,
    exitCode: code,
    stdout: out,
    stderr: err,
    command: body.command,
    duration: Date.now() - started,
    timestamp: new Date().toISOString(),
  };
  await send({ type: 'complete', timestamp: result.timestamp, exitCode: code, result });
  response.end();
}
