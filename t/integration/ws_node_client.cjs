// ws_node_client.cjs - a Node.js WebSocket client (the `ws` npm package,
// permessage-deflate offered) for test_deflate_node.py.
//
//   NODE_PATH=.../node_modules node ws_node_client.cjs URL COUNT
//
// Connects to URL with perMessageDeflate on, then prints one JSON object
// per line on stdout:
//   {"step":"open","extensions":...,"version":...}
//                              ws.extensions: the extensions the server
//                              accepted (its Sec-WebSocket-Extensions)
//   {"step":"message","n":I,"binary":false,"b64":...}
//                              each message as received, bytes in base64
//   {"step":"done","code":1000}
//                              after COUNT messages, once it closed (1000)
// or {"step":"error","message":...} (exit status 1): an error, a close
// before COUNT messages, or nothing for 60 s.
'use strict';

const WebSocket = require('ws');

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let failed = false;

function fail(message) {
  if (failed) return;
  failed = true;
  say({ step: 'error', message: String(message) });
  process.exitCode = 1;
  try { ws.terminate(); } catch (e) { /* not open */ }
  setTimeout(() => process.exit(1), 100).unref();
}

// perMessageDeflate: true offers "permessage-deflate; client_max_window_bits"
// (ws's client default, made explicit here).
const ws = new WebSocket(url, { perMessageDeflate: true, handshakeTimeout: 10000 });
let n = 0;
let timer = setTimeout(() => fail('nothing for 60 s'), 60000);

ws.on('open', () => {
  say({ step: 'open', extensions: ws.extensions, version: require('ws/package.json').version });
  if (count === 0) ws.close(1000);
});
ws.on('message', (data, isBinary) => {
  clearTimeout(timer);
  timer = setTimeout(() => fail('nothing for 60 s after message ' + n), 60000);
  const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
  say({ step: 'message', n: n, binary: isBinary, b64: buf.toString('base64') });
  n += 1;
  if (n === count) ws.close(1000);
});
ws.on('error', (e) => fail((e && e.stack) || e));
ws.on('close', (code, reason) => {
  clearTimeout(timer);
  if (n < count) fail('closed after ' + n + ' of ' + count + ' messages: ' + code + ' ' + reason);
  else if (!failed) say({ step: 'done', code: code });
});
