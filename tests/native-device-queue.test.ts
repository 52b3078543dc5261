// The per-device queue (lib/device-queue.ts): one order per device, turns on several devices taken
// at once (so opposite moves cannot deadlock), re-entrant turns, and failures that free the key.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DeviceQueue, onDevice, queueKey } from "../lib/device-queue.ts";

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A job that records when it starts and ends and stays busy for a few event-loop turns. */
function recorder(log: string[]) {
  return (name: string, turns = 3) =>
    async () => {
      log.push(`${name}:start`);
      for (let i = 0; i < turns; i++) await tick();
      log.push(`${name}:end`);
      return name;
    };
}

describe("DeviceQueue", () => {
  it('"cuda" and "cuda:0" are one key; cuda:1 another', () => {
    assert.equal(queueKey("cuda"), "cuda:0");
    assert.equal(queueKey("cuda:0"), "cuda:0");
    assert.equal(queueKey("cuda:1"), "cuda:1");
  });

  it("runs jobs on one device one at a time, in the order queued", async () => {
    const q = new DeviceQueue();
    const log: string[] = [];
    const job = recorder(log);
    const results = await Promise.all([q.run("cuda", job("a")), q.run("cuda:0", job("b")), q.run("cuda", job("c"))]);
    assert.deepEqual(results, ["a", "b", "c"]);
    assert.deepEqual(log, ["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
  });

  it("lets different devices run at the same time", async () => {
    const q = new DeviceQueue();
    const log: string[] = [];
    const job = recorder(log);
    await Promise.all([q.run("cpu", job("cpu")), q.run("cuda:1", job("gpu"))]);
    assert.deepEqual(log.slice(0, 2).sort(), ["cpu:start", "gpu:start"]);
  });

  it("moves in both directions at once finish (no deadlock) and each waits for earlier work on both keys", async () => {
    const q = new DeviceQueue();
    const log: string[] = [];
    const job = recorder(log);
    const busyCpu = q.run("cpu", job("forward-cpu", 5));
    const busyGpu = q.run("cuda:1", job("forward-gpu", 2));
    // The old scheme waited on the source while holding the destination: these two locked forever.
    const there = q.run(["cpu", "cuda:1"], job("cpu->cuda:1"));
    const back = q.run(["cuda:1", "cpu"], job("cuda:1->cpu"));
    const later = q.run("cpu", job("after"));
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("deadlock: moves did not finish in 5 s")), 5000).unref());
    await Promise.race([Promise.all([busyCpu, busyGpu, there, back, later]), timeout]);
    const at = (e: string) => log.indexOf(e);
    assert.ok(at("cpu->cuda:1:start") > at("forward-cpu:end") && at("cpu->cuda:1:start") > at("forward-gpu:end"));
    assert.ok(at("cuda:1->cpu:start") > at("cpu->cuda:1:end"), "the second move waits for the first (both hold cpu and cuda:1)");
    assert.ok(at("after:start") > at("cuda:1->cpu:end"));
    assert.deepEqual(q.busyKeys(), []);
  });

  it("is re-entrant: work for a held device queued inside a turn runs inside it", async () => {
    const q = new DeviceQueue();
    const log: string[] = [];
    const job = recorder(log);
    const outer = q.run("cpu", async () => {
      log.push("outer:start");
      assert.ok(q.holds("cpu"));
      const inner = await q.run("cpu", job("inner"));
      log.push("outer:end");
      return inner;
    });
    const next = q.run("cpu", job("next"));
    assert.equal(await outer, "inner");
    await next;
    assert.deepEqual(log, ["outer:start", "inner:start", "inner:end", "outer:end", "next:start", "next:end"]);
    assert.equal(q.holds("cpu"), false);
  });

  it("a failed job rejects its caller and frees the key for the next job", async () => {
    const q = new DeviceQueue();
    const failed = q.run("cpu", () => {
      throw new Error("boom");
    });
    const next = q.run("cpu", () => 42);
    await assert.rejects(failed, /boom/);
    assert.equal(await next, 42);
  });

  it("onDevice takes one device or several at once, and checks its arguments", async () => {
    assert.equal(await onDevice(["cpu", "cuda:3"], () => 7), 7);
    assert.throws(() => onDevice([], () => 1), /device/);
    assert.throws(() => onDevice(["cpu", "tpu"], () => 1), /device/);
    assert.throws(() => onDevice("gpu", () => 1), /device/);
    assert.throws(() => onDevice("cpu", 1 as never), /job/);
  });
});
