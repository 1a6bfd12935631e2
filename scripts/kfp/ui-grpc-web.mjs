#!/usr/bin/env node
// grpc-web to gRPC for the KFP UI, in place of upstream's metadata-envoy (not deployed here).
//
//   usage: node scripts/kfp/ui-grpc-web.mjs LISTEN_PORT GRPC_HOST:GRPC_PORT
//
// The UI's browser code calls ML Metadata with grpc-web (binary mode, unary calls only) at
// /ml_metadata.MetadataStoreService/<Method>; its node server proxies that path here. grpc-web's
// message frames are gRPC's (1 flag byte, 4 length bytes, the message), so a request body goes to
// the gRPC server over h2c unchanged and no proto is parsed; what grpc-web adds is the trailers
// as a last frame (flag 0x80) in the body, because browsers cannot read HTTP/2 trailers.
// grpc-web-text (the same, base64) is handled too. Node's own http/http2 modules: no packages.
import http from 'node:http';
import http2 from 'node:http2';

const [listenPort, target] = process.argv.slice(2);
if (!listenPort || !target) {
  console.error('usage: ui-grpc-web.mjs LISTEN_PORT GRPC_HOST:GRPC_PORT');
  process.exit(2);
}

let session;
function grpcSession() {
  // One HTTP/2 connection for all calls, reopened after the port-forward drops it.
  if (!session || session.closed || session.destroyed) {
    session = http2.connect(`http://${target}`);
    session.on('error', (err) => console.error(`grpc-web: ${target}: ${err.message}`));
  }
  return session;
}

function trailerFrame(fields) {
  const text = Object.entries(fields)
    .map(([k, v]) => `${k}:${v}\r\n`)
    .join('');
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(Buffer.byteLength(text), 1);
  return Buffer.concat([head, Buffer.from(text)]);
}

function forward(req, res, body) {
  const textMode = (req.headers['content-type'] || '').startsWith('application/grpc-web-text');
  const payload = textMode ? Buffer.from(body.toString(), 'base64') : body;
  const call = grpcSession().request({
    ':method': 'POST',
    ':path': req.url,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const chunks = [];
  let status = { 'grpc-status': '14', 'grpc-message': 'no response' };
  call.on('response', (headers) => {
    // A failed call may answer with headers only ("trailers-only"): the status is here.
    if (headers['grpc-status'] !== undefined) status = pick(headers);
  });
  call.on('trailers', (trailers) => (status = pick(trailers)));
  call.on('data', (chunk) => chunks.push(chunk));
  call.on('error', (err) => {
    status = { 'grpc-status': '14', 'grpc-message': encodeURIComponent(err.message) };
  });
  call.on('close', () => {
    const out = Buffer.concat([...chunks, trailerFrame(status)]);
    res.writeHead(200, {
      'content-type': textMode ? 'application/grpc-web-text+proto' : 'application/grpc-web+proto',
    });
    res.end(textMode ? out.toString('base64') : out);
    console.log(`${req.url} grpc-status ${status['grpc-status']}`);
  });
  call.end(payload);
}

function pick(headers) {
  return {
    'grpc-status': String(headers['grpc-status'] ?? '2'),
    'grpc-message': String(headers['grpc-message'] ?? ''),
  };
}

http
  .createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const parts = [];
    req.on('data', (chunk) => parts.push(chunk));
    req.on('end', () => forward(req, res, Buffer.concat(parts)));
  })
  .listen(Number(listenPort), '127.0.0.1', () =>
    console.log(`grpc-web on 127.0.0.1:${listenPort} -> gRPC ${target}`),
  );
