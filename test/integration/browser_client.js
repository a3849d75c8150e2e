// test/integration/browser_client.js — the game client run by a real Chromium in
// //test/integration:browser_test (browser_test.py serves it in a page and calls
// runGameClient through the DevTools protocol).
//
// It speaks the client frame of docs/protocol.md inside WebSocket binary messages, as a
// browser (WebGL / H5) game build would: every frame is built with a DataView into an
// ArrayBuffer, sent as one message, two frames in one message, or one frame split over two
// messages; what comes back is collected as ArrayBuffers (binaryType "arraybuffer"), one
// entry per binary message, so the driver can check that each echo and each push came in a
// binary message of its own.

"use strict";

// Returns one client frame as an ArrayBuffer: the 8-byte header (u16 payload length,
// u16 msg_id, u32 server_id, all little-endian) followed by the payload (a Uint8Array,
// at most 65535 bytes).
function clientFrame(msgId, serverId, payload) {
  const buf = new ArrayBuffer(8 + payload.length);
  const view = new DataView(buf);
  view.setUint16(0, payload.length, true);
  view.setUint16(2, msgId, true);
  view.setUint32(4, serverId, true);
  new Uint8Array(buf, 8).set(payload);
  return buf;
}

// Returns the ArrayBuffer holding a then b.
function concat(a, b) {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(new Uint8Array(a), 0);
  out.set(new Uint8Array(b), a.byteLength);
  return out.buffer;
}

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Opens `url`, sends the frames below and collects every message until the five echoes and
// at least one frame of msg_id `pushType` (a backend push) arrived, then closes with 1000.
// Resolves (never rejects) within `timeoutMs` with what happened:
//   {origin, opened, error, messages: [{type, hex}], closeCode, closeReason, wasClean,
//    timedOut, ms}
// A refused handshake shows as opened=false, error=true, closeCode 1006.
function runGameClient(url, serverId, pushType, timeoutMs) {
  const enc = new TextEncoder();
  const big = new Uint8Array(1000).map((_, i) => i % 251);  // > 125: 16-bit WS length
  const frames = {
    one: clientFrame(101, serverId, enc.encode("browser one")),
    twoA: clientFrame(102, serverId, enc.encode("two-a")),
    twoB: clientFrame(103, serverId, enc.encode("two-b")),
    split: clientFrame(104, serverId, enc.encode("split over two messages")),
    big: clientFrame(105, serverId, big),
  };
  const wantEchoes = new Set([101, 102, 103, 104, 105]);
  const start = performance.now();
  const result = {origin: self.origin, opened: false, error: false, messages: [],
                  closeCode: null, closeReason: null, wasClean: null, timedOut: false};
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      result.ms = Math.round(performance.now() - start);
      resolve(result);
    };
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    const timer = setTimeout(() => {
      result.timedOut = true;
      try { ws.close(1000, "test timeout"); } catch (e) {}
      finish();
    }, timeoutMs);
    let pushes = 0;
    ws.onopen = () => {
      result.opened = true;
      ws.send(frames.one);                          // one frame, one message
      ws.send(concat(frames.twoA, frames.twoB));    // two frames in one message
      ws.send(frames.split.slice(0, 5));            // one frame over two messages
      ws.send(frames.split.slice(5));
      ws.send(frames.big);
    };
    ws.onmessage = (e) => {
      const isBinary = e.data instanceof ArrayBuffer;
      result.messages.push({type: isBinary ? "binary" : typeof e.data,
                            hex: isBinary ? hex(e.data) : String(e.data)});
      if (isBinary && e.data.byteLength >= 8) {
        const msgId = new DataView(e.data).getUint16(2, true);
        if (msgId === pushType) pushes++;
        wantEchoes.delete(msgId);
      }
      if (wantEchoes.size === 0 && pushes > 0 && ws.readyState === WebSocket.OPEN) {
        ws.close(1000, "done");
      }
    };
    ws.onerror = () => { result.error = true; };
    ws.onclose = (e) => {
      clearTimeout(timer);
      result.closeCode = e.code;
      result.closeReason = e.reason;
      result.wasClean = e.wasClean;
      finish();
    };
  });
}
