// Toxiproxy's Node client (toxiproxy-node-client, from npm) against `socklab proxy --api`.
// Run by tests/toxiproxy_clients.rs with API=HOST:PORT and ECHO=HOST:PORT (a real echo server).
"use strict";
const assert = require("assert");
const net = require("net");
const { Toxiproxy } = require("toxiproxy-node-client");

const api = `http://${process.env.API}`;
const echo = process.env.ECHO;

// Sends msg; resolves with what came back before EOF (or `want` bytes), or "reset" / "refused".
function exchange(addr, msg, want) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const finish = (v) => { if (!done) { done = true; sock.destroy(); resolve(v); } };
    const sock = net.connect({ host, port }, () => sock.write(msg));
    sock.setTimeout(20000, () => finish("stalled"));
    sock.on("data", (d) => {
      chunks.push(d);
      const got = Buffer.concat(chunks);
      if (want !== undefined && got.length >= want) finish(got.toString());
    });
    sock.on("end", () => finish(Buffer.concat(chunks).toString()));
    // EPIPE: the write came after the RST (reset_peer may reset as soon as the handshake is done).
    const named = { ECONNRESET: "reset", EPIPE: "reset", ECONNREFUSED: "refused" };
    sock.on("error", (e) => finish(named[e.code] || e.code));
  });
}

async function status(promise) {
  try {
    await promise;
    return 200;
  } catch (e) {
    const m = /status code (\d+)/.exec(e.message);
    return m ? Number(m[1]) : e.message;
  }
}

(async () => {
  const toxiproxy = new Toxiproxy(api);
  assert.match(await toxiproxy.getVersion(), /socklab/);
  const proxy = await toxiproxy.createProxy({ name: "node_echo", listen: "127.0.0.1:0", upstream: echo });
  const at = proxy.listen;
  assert.strictEqual(await exchange(at, "hello", 5), "hello");
  assert.strictEqual(await status(toxiproxy.createProxy({ name: "node_echo", upstream: echo })), 409);

  // latency: added, felt, updated, removed
  const latency = await proxy.addToxic({ type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 1000 } });
  assert.strictEqual(latency.name, "latency_downstream");
  let start = Date.now();
  assert.strictEqual(await exchange(at, "hello", 5), "hello");
  assert.ok(Date.now() - start >= 1000, "latency delays the echo");
  const updated = await latency.update({ attributes: { latency: 0 } });
  assert.strictEqual(updated.attributes.latency, 0);
  start = Date.now();
  assert.strictEqual(await exchange(at, "hello", 5), "hello");
  assert.ok(Date.now() - start < 1000, "the update took effect");
  await updated.remove();
  assert.strictEqual(await status(proxy.getToxic("latency_downstream")), 404);

  // reset_peer, limit_data, timeout
  let toxic = await proxy.addToxic({ type: "reset_peer", attributes: { timeout: 0 } });
  assert.strictEqual(await exchange(at, "x"), "reset", "reset_peer resets the client");
  await toxic.remove();
  toxic = await proxy.addToxic({ type: "limit_data", attributes: { bytes: 4 } });
  assert.strictEqual(await exchange(at, "Hello"), "Hell", "limit_data closes after 4 bytes");
  await toxic.remove();
  toxic = await proxy.addToxic({ type: "timeout", attributes: { timeout: 300 } });
  start = Date.now();
  assert.strictEqual(await exchange(at, "hi"), "", "timeout forwards nothing, then closes");
  assert.ok(Date.now() - start >= 300);
  await toxic.remove();
  assert.strictEqual(await exchange(at, "hello", 5), "hello", "healed");

  // disable / enable
  const disabled = await proxy.update({ enabled: false });
  assert.strictEqual(disabled.enabled, false);
  assert.strictEqual(await exchange(at, "hello"), "refused");
  await proxy.update({ enabled: true });
  assert.strictEqual(await exchange(at, "hello", 5), "hello");

  // reset
  await proxy.addToxic({ type: "latency", attributes: { latency: 1000 } });
  await proxy.update({ enabled: false });
  await toxiproxy.reset();
  const after = await toxiproxy.get("node_echo");
  assert.strictEqual(after.enabled, true);
  assert.deepStrictEqual((await toxiproxy.getApi().get(`${api}/proxies/node_echo/toxics`)).data, []);
  assert.strictEqual(await exchange(at, "hello", 5), "hello");

  // populate, bad requests
  const populated = await toxiproxy.populate([{ name: "node_pop", listen: "127.0.0.1:0", upstream: echo }]);
  assert.strictEqual(await exchange(populated.node_pop.listen, "pop", 3), "pop");
  assert.strictEqual(await status(proxy.addToxic({ type: "gremlin" })), 400);
  assert.strictEqual(await status(toxiproxy.get("ghost")), 404);
  assert.strictEqual(await status(toxiproxy.createProxy({ name: "twin", listen: at, upstream: echo })), 500);
  assert.strictEqual(await exchange(at, "still", 5), "still", "the proxy keeps serving after bad requests");
  const all = await toxiproxy.getAll();
  assert.deepStrictEqual(Object.keys(all).sort(), ["node_echo", "node_pop"]);
  await all.node_pop.remove();
  await proxy.remove();
  console.log("toxiproxy-node-client: all checks passed");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
