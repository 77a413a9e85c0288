// eddy's Node.js runtime: a Lambda Runtime API client that loads `_HANDLER` (file.export) from
// LAMBDA_TASK_ROOT and runs it for each invocation, as Lambda's own Node.js runtime does.
// Handlers may be async, return a promise, or take a callback; modules may be CommonJS or ES.
'use strict';

const http = require('http');
const path = require('path');
const fs = require('fs');
const util = require('util');
const { pathToFileURL } = require('url');

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
// Answers go on a connection of their own, so the next long poll need not wait for an answer's
// acknowledgement.
const answers = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = '/2018-06-01/runtime';

function call(method, route, body, headers, via) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host, port, method, path: base + route, agent: via || agent, headers: headers || {} },
      (response) => {
        const chunks = [];
        response.on('data', (c) => chunks.push(c));
        response.on('end', () =>
          resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
      });
    request.on('error', reject);
    if (body !== undefined) request.write(body);
    request.end();
  });
}

// Lambda's error shape, from anything a handler throws or passes to its callback.
function describe(error) {
  if (error instanceof Error) {
    return {
      errorType: error.name || 'Error',
      errorMessage: error.message,
      stackTrace: (error.stack || '').split('\n').slice(1).map((l) => l.trim()),
    };
  }
  return { errorType: typeof error === 'string' ? 'string' : 'Error', errorMessage: util.format(error), stackTrace: [] };
}

function post(route, payload, errorType) {
  const body = JSON.stringify(payload);
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (errorType) headers['lambda-runtime-function-error-type'] = errorType;
  return call('POST', route, body, headers);
}

async function initError(errorType, error) {
  const described = describe(error);
  described.errorType = errorType;
  console.error(JSON.stringify(described));
  await post('/init/error', described, errorType);
  process.exit(1);
}

// Each console line as Lambda writes it: time, request id, level, message.
let requestId = undefined;
for (const [method, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE']]) {
  const stream = level === 'INFO' || level === 'DEBUG' ? process.stdout : process.stderr;
  console[method] = (...args) => {
    const text = util.format(...args).replace(/\n/g, '\r');
    stream.write(`${new Date().toISOString()}\t${requestId || 'undefined'}\t${level}\t${text}\n`);
  };
}

async function loadHandler() {
  const spec = process.env._HANDLER || '';
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) {
    return initError('Runtime.MalformedHandlerName', new Error(`Bad handler ${spec}: write file.export`));
  }
  const [file, exported] = [spec.slice(0, dot), spec.slice(dot + 1)];
  const candidates = ['.js', '.mjs', '.cjs'].map((ext) => path.resolve(root, file + ext));
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) {
    const error = new Error(`Cannot find module '${file}'`);
    error.name = 'Runtime.ImportModuleError';
    return initError('Runtime.ImportModuleError', error);
  }
  let module;
  try {
    module = await import(pathToFileURL(found).href);
  } catch (error) {
    const type = error instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError';
    return initError(type, error);
  }
  // A CommonJS module's exports arrive as the default export.
  const handler = module[exported] !== undefined ? module[exported] : (module.default || {})[exported];
  if (typeof handler !== 'function') {
    return initError('Runtime.HandlerNotFound', new Error(`${spec} is undefined or not exported`));
  }
  return handler;
}

function context(headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const env = process.env;
  return {
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    eddy: { eventId: headers['eddy-event-id'], hops: Number(headers['eddy-hops'] || 0) },
  };
}

// Runs the handler in whichever style it was written: callback, promise, or plain value.
function run(handler, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const once = (fn) => (value) => { if (!settled) { settled = true; fn(value); } };
    const [ok, fail] = [once(resolve), once(reject)];
    const callback = (error, result) => (error !== undefined && error !== null ? fail(error) : ok(result));
    ctx.done = callback;
    ctx.succeed = (result) => ok(result);
    ctx.fail = (error) => fail(error);
    try {
      const returned = handler(event, ctx, callback);
      if (returned && typeof returned.then === 'function') {
        returned.then(ok, fail);
      } else if (handler.length < 3) {
        ok(returned);
      }
    } catch (error) {
      fail(error);
    }
  });
}

let current = undefined;
// An error no handler caught ends the invocation (and this worker), as on Lambda.
async function crash(error) {
  if (current) {
    console.error(`Uncaught ${describe(error).errorType}: ${describe(error).errorMessage}`);
    await post(`/invocation/${current}/error`, describe(error), 'Runtime.UnhandledPromiseRejection').catch(() => {});
  }
  process.exit(1);
}
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

(async () => {
  const handler = await loadHandler();
  for (;;) {
    const next = await call('GET', '/invocation/next');
    if (next.status !== 200) process.exit(0);
    const id = next.headers['lambda-runtime-aws-request-id'];
    current = requestId = id;
    let event;
    try {
      event = JSON.parse(next.body.toString('utf8'));
    } catch (error) {
      await post(`/invocation/${id}/error`, describe(error), 'Runtime.UnmarshalError');
      continue;
    }
    try {
      const result = await run(handler, event, context(next.headers));
      const body = JSON.stringify(result === undefined ? null : result);
      // Not awaited: the next long poll starts while the answer is acknowledged.
      call('POST', `/invocation/${id}/response`, body, { 'content-type': 'application/json' }, answers)
        .catch((error) => console.error(`eddy: the answer was not delivered: ${error.message}`));
    } catch (error) {
      const described = describe(error);
      console.error(`Invoke Error \t${JSON.stringify(described)}`);
      await post(`/invocation/${id}/error`, described, described.errorType);
    }
    current = undefined;
  }
})();
