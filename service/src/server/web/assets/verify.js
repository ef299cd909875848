// Checks a c2sp.org/tlog-proof receipt in the browser, with WebCrypto only: the entry's leaf
// hash (RFC 6962: SHA-256 of 0x00 and the entry), the audit path up to the checkpoint's root
// (RFC 9162, 2.1.3.2), and the checkpoint's Ed25519 signature (C2SP signed-note) by the log's
// key that the page names. Nothing is sent anywhere.
"use strict";
(function () {
  const box = document.getElementById("receipt");
  const button = document.getElementById("check-receipt");
  const out = document.getElementById("receipt-result");
  if (!box || !button || !out) return;

  const enc = new TextEncoder();
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const cat = (...parts) => {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return all;
  };
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const fail = (why) => { throw new Error(why); };

  async function check(text, vkey) {
    text = text.replace(/\r\n/g, "\n");
    const split = text.indexOf("\n\n");
    if (split < 0) fail("no blank line before the checkpoint");
    const head = text.slice(0, split).split("\n");
    const note = text.slice(split + 2);
    if (head[0] !== "c2sp.org/tlog-proof@v1") fail("not a c2sp.org/tlog-proof@v1 receipt");
    let k = 1;
    let extra = null;
    if (head[k] && head[k].startsWith("extra ")) extra = b64(head[k++].slice(6));
    if (!head[k] || !head[k].startsWith("index ")) fail("no index line");
    let index = BigInt(head[k++].slice(6));
    const path = head.slice(k).map(b64);
    if (extra === null) fail("the receipt carries no entry");

    // The checkpoint: body lines, a blank line, signature lines.
    const sigAt = note.indexOf("\n\n");
    if (sigAt < 0) fail("the checkpoint has no signature");
    const body = note.slice(0, sigAt + 1);
    const lines = body.split("\n");
    const size = BigInt(lines[1] || "x");
    const root = b64(lines[2] || "");

    // The key: name+hash+base64(0x01 || 32-byte Ed25519 key).
    // Split at the first two `+` only: the base64 key may hold more.
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    if (first < 0 || second < 0) fail("the log's key is not name+hash+key");
    const name = vkey.slice(0, first), hash = vkey.slice(first + 1, second), key64 = vkey.slice(second + 1);
    const key = b64(key64 || "");
    if (key.length !== 33 || key[0] !== 1) fail("the log's key is not an Ed25519 signed-note key");
    const keyId = (await sha256(cat(enc.encode(name + "\n"), key))).slice(0, 4);
    if (hash !== Array.from(keyId, (x) => x.toString(16).padStart(2, "0")).join("")) fail("the log's key does not match its hash");

    // The inclusion proof.
    if (index >= size) fail("the entry is not in the checkpoint's tree");
    let fn = index, sn = size - 1n;
    let r = await sha256(cat(Uint8Array.of(0), extra));
    for (const p of path) {
      if (sn === 0n) fail("the audit path is too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(cat(Uint8Array.of(1), p, r));
        if ((fn & 1n) === 0n) { while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; } }
      } else {
        r = await sha256(cat(Uint8Array.of(1), r, p));
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n || !same(r, root)) fail("the entry and its audit path do not lead to the checkpoint's root");

    // The checkpoint's signature by the log's key.
    const signatures = note.slice(sigAt + 2).split("\n").filter((l) => l.startsWith("\u2014 " + name + " "));
    const publicKey = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    for (const line of signatures) {
      const sig = b64(line.slice(("\u2014 " + name + " ").length));
      if (sig.length === 68 && same(sig.slice(0, 4), keyId)
        && await crypto.subtle.verify({ name: "Ed25519" }, publicKey, sig.slice(4), enc.encode(body))) {
        return { index, size };
      }
    }
    fail("the checkpoint is not signed by the log's key");
  }

  button.addEventListener("click", async () => {
    out.className = "";
    if (!window.crypto || !crypto.subtle) {
      out.textContent = box.dataset.noCrypto;
      out.className = "error";
      return;
    }
    try {
      const { index, size } = await check(box.value, box.dataset.key);
      out.textContent = box.dataset.ok.replace("{index}", index).replace("{size}", size);
      out.className = "ok";
    } catch (e) {
      out.textContent = box.dataset.bad + " " + (e && e.message ? e.message : String(e));
      out.className = "error";
    }
  });
})();
