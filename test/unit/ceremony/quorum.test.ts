/**
 * The quorum engine against a stateful fake server: every outcome of the one union, the rekey state machine's first
 * transition, and the raft follower that is waited on by its state rather than a clock (issue 12, defect 5a).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  classifyFailure,
  collectDistinctShares,
  describeSet,
  fixedSource,
  newNode,
  type QuorumOutcome,
  type QuorumTarget,
  runQuorum,
} from "../../../src/ceremony/quorum.js";
import { resolveStart } from "../../../src/ceremony/rekey.js";
import { runUnseal, type UnsealEvent } from "../../../src/ceremony/unseal.js";
import { type KeyShare, parseKeyShare } from "../../../src/ceremony/unseal-key.js";
import { UsageError, VaultConnectionError, VaultHttpError } from "../../../src/errors.js";
import type { VaultClient } from "../../../src/vault/client.js";
import type { SealStatus } from "../../../src/vault/types.js";

const share = (n: number, operator?: string): KeyShare =>
  parseKeyShare(n.toString(16).padStart(2, "0").repeat(33), `share ${n}`, operator);
const http = (status: number, ...errors: string[]) => new VaultHttpError("http://n1", "PUT", "/v1/x", status, errors);
const down = () => new VaultConnectionError("http://n1", "refused", "http://n1 refused the connection");

/**
 * A quorum attempt on a server, in memory: progress and nonce, keys counted once per attempt, restart() loses them;
 * `fail` makes the next submission throw what a server would.
 */
function fakeAttempt(threshold: number, opts: { duplicateIsError?: boolean } = {}) {
  const keys = new Set<string>();
  let attempts = 0;
  const state = { progress: 0, nonce: "", complete: false, fail: undefined as unknown };
  const target = (): QuorumTarget => {
    const node = newNode("http://n1", 0, threshold);
    return {
      node,
      submit: async (s) => {
        if (state.fail) {
          const err = state.fail;
          state.fail = undefined;
          throw err;
        }
        if (keys.has(s.hex)) {
          if (opts.duplicateIsError)
            throw http(400, "given key has already been provided during this generation operation");
        } else {
          keys.add(s.hex);
          if (state.progress === 0) state.nonce = `nonce-${++attempts}`;
          state.progress++;
        }
        if (state.progress >= threshold) state.complete = true;
        return { progress: state.progress, nonce: state.nonce, complete: state.complete };
      },
    };
  };
  return {
    state,
    target,
    restart() {
      state.progress = 0;
      state.nonce = "";
      keys.clear();
    },
  };
}

async function outcomesOf(t: QuorumTarget, shares: KeyShare[], before?: (i: number) => void): Promise<QuorumOutcome[]> {
  const out: QuorumOutcome[] = [];
  let i = 0;
  await runQuorum({
    targets: [t],
    source: {
      next: async () => {
        before?.(i);
        return shares[i++] ?? null;
      },
    },
    describe: (o) => o,
    prompt: () => ({ progressLine: "", remaining: 1 }),
    onShare: (_s, results) => out.push(...results.map((r) => r.outcome)),
  });
  return out;
}

describe("quorum engine: outcomes from answers", () => {
  it("accepted until the threshold, then complete; the node takes no more shares", async () => {
    const a = fakeAttempt(3);
    const t = a.target();
    expect(await outcomesOf(t, [share(1, "alice"), share(2, "bob"), share(3, "carol"), share(4)])).toEqual([
      "accepted",
      "accepted",
      "complete",
    ]);
    expect(t.node).toMatchObject({ state: "complete", contributors: ["alice", "bob", "carol"] });
  });

  it("names a duplicate whether the server says so or its progress does not move", async () => {
    for (const duplicateIsError of [false, true]) {
      const t = fakeAttempt(3, { duplicateIsError }).target();
      expect(await outcomesOf(t, [share(1), share(1), share(2)])).toEqual(["accepted", "duplicate", "accepted"]);
      expect(t.node.progress).toBe(2);
      expect(t.node.state).toBe("open");
    }
  });

  it("a restarted node is not given shares no set has proven: they are asked for again (issue 25)", async () => {
    const a = fakeAttempt(3);
    const out = await outcomesOf(a.target(), [share(1), share(2), share(3), share(4)], (i) => i === 1 && a.restart());
    expect(out).toEqual(["accepted", "restarted", "accepted", "complete"]);
  });
});

/**
 * A raft cluster in memory, as issue 25 found it: `good` shares combine, anything else does not. The leader refuses a
 * set with a wrong share at its threshold (400); a follower joining its leader takes the set it reaches the threshold
 * with to decrypt the leader's challenge, and with a wrong share it wedges (`wedged`) instead of refusing.
 */
function raftNode(address: string, threshold: number, good: Set<string>, opts: { joining?: boolean } = {}) {
  const keys: string[] = [];
  const state = { wedged: false, complete: false, received: [] as string[], attempt: 1 };
  const node = newNode(address, 0, threshold);
  if (opts.joining) node.state = "waiting";
  const target: QuorumTarget = {
    node,
    submit: async (s) => {
      state.received.push(s.origin);
      if (!keys.includes(s.hex)) keys.push(s.hex);
      if (keys.length < threshold) return { progress: keys.length, nonce: `n${state.attempt}`, complete: false };
      const ok = keys.every((k) => good.has(k));
      keys.length = 0;
      if (ok) {
        state.complete = true;
        return { progress: 0, nonce: "", complete: true };
      }
      if (opts.joining) {
        state.wedged = true;
        return { progress: 0, complete: false, outcome: "no-unseal" };
      }
      throw http(400, "cipher: message authentication failed");
    },
  };
  const restart = () => {
    keys.length = 0;
    state.attempt++;
  };
  return { target, state, restart };
}

describe("quorum engine: only proven shares are replayed (issue 25)", () => {
  const good = [1, 2, 3, 4, 5].map((n) => share(n, `op${n}`));
  const bad = share(0xee, "mallory");
  const goodHex = new Set(good.map((s) => s.hex));

  for (const position of [0, 1, 2]) {
    it(`a mistyped share at position ${position + 1} of the first set is never replayed to a joining follower`, async () => {
      const first = [good[0]!, good[1]!];
      first.splice(position, 0, bad);
      const leader = raftNode("http://n1", 3, goodHex);
      const followers = [
        raftNode("http://n2", 3, goodHex, { joining: true }),
        raftNode("http://n3", 3, goodHex, { joining: true }),
      ];
      const results: { address: string; outcome: QuorumOutcome; set?: unknown }[] = [];
      const wrong: string[] = [];
      const run = await runQuorum({
        targets: [leader.target, ...followers.map((f) => f.target)],
        source: fixedSource([...first, good[2]!, good[3]!, good[4]!]),
        refusal: "rejected-set",
        describe: (o) => o,
        prompt: () => ({ progressLine: "", remaining: 3 }),
        // the followers join once the leader is unsealed
        admit: async () => {
          if (!leader.state.complete) return [];
          const joined = followers.filter((f) => f.target.node.state === "waiting");
          for (const f of joined) f.target.node.state = "open";
          return joined.map((f) => f.target);
        },
        whenIdle: async () => followers.some((f) => f.target.node.state === "waiting"),
        onShare: (_s, r) => results.push(...r),
        onWrongShare: (set) => wrong.push(set.wrong!.who),
      });
      expect(leader.state.complete).toBe(true);
      for (const f of followers) {
        expect(f.state.wedged).toBe(false);
        expect(f.state.complete).toBe(true);
        expect(f.state.received).not.toContain(bad.origin);
      }
      // the refused set is named, every share of it, and nobody is blamed for it by position
      expect(run.rejected).toHaveLength(1);
      expect(run.rejected[0]!.shares.map((s) => s.who)).toEqual(first.map((s) => s.operator));
      expect(run.rejected[0]!.wrong).toBeUndefined(); // op1/op2 never completed a node: it cannot be told
      expect(wrong).toEqual([]);
    });
  }

  it("a node restarted between shares gets the earlier share once the others prove it (fault campaign)", async () => {
    const nodes = ["http://n1", "http://n2", "http://n3"].map((a) => raftNode(a, 3, goodHex));
    let i = 0;
    const shares = [good[0]!, good[1]!, good[2]!];
    const outcomes: string[] = [];
    await runQuorum({
      targets: nodes.map((n) => n.target),
      source: {
        next: async () => {
          if (i === 1) nodes[0]!.restart();
          return shares[i++] ?? null;
        },
      },
      describe: (o) => o,
      prompt: () => ({ progressLine: "", remaining: 3 }),
      onShare: (s, r) => outcomes.push(`${s.operator}: ${r.map((x) => x.outcome).join(" ")}`),
    });
    expect(nodes.map((n) => n.state.complete)).toEqual([true, true, true]);
    expect(outcomes).toEqual([
      "op1: accepted accepted accepted",
      "op2: restarted accepted accepted",
      "op3: accepted complete complete",
      "op1: complete",
    ]);
  });

  it("the wrong share is named when the rest of the refused set completes a node", async () => {
    const leader = raftNode("http://n1", 3, goodHex);
    const wrong: string[] = [];
    const run = await runQuorum({
      targets: [leader.target],
      source: fixedSource([good[0]!, bad, good[1]!, good[0]!, good[1]!, good[2]!]),
      refusal: "rejected-set",
      describe: (o, { set }) => (set ? `refused: ${set.shares.map((s) => s.who).join(", ")}` : o),
      prompt: () => ({ progressLine: "", remaining: 3 }),
      onWrongShare: (set) => wrong.push(set.wrong!.who),
    });
    expect(leader.state.complete).toBe(true);
    expect(wrong).toEqual(["mallory"]);
    expect(run.rejected[0]).toMatchObject({ address: "http://n1", earlier: 0, wrong: { who: "mallory" } });
  });

  it("a refused set with shares from before this run names them as unknown and blames no share", async () => {
    const node = newNode("http://n1", 2, 3, "n");
    const run = await runQuorum({
      targets: [{ node, submit: async () => Promise.reject(http(400, "cipher: message authentication failed")) }],
      source: fixedSource([good[0]!]),
      refusal: "rejected-set",
      describe: (o, { set }) => (set ? describeSet(set) : o),
      prompt: () => ({ progressLine: "", remaining: 1 }),
    });
    expect(node.message).toBe(`op1 [${good[0]!.fingerprint}], 2 share(s) the node held from before this run`);
    expect(run.rejected[0]!.wrong).toBeUndefined();
  });
});

describe("quorum engine: one classifier for every failure", () => {
  const cases: [unknown, QuorumOutcome][] = [
    [down(), "node-down"],
    [http(503, "Vault is sealed"), "sealed"],
    [http(400, "given key has already been provided during this rotation"), "duplicate"],
    [http(400, 'incorrect nonce supplied; nonce for this root generation operation is "x"'), "wrong-nonce"],
    [http(400, "no rekey in progress"), "gone"],
    [http(400, "no rotation verification in progress"), "gone"],
    [http(400, "no root generation in progress"), "gone"],
    [
      http(
        400,
        'rotation already finished; verification must be performed; nonce for the verification operation is "x"',
      ),
      "already-updated",
    ],
    [http(400, "root key verification failed: cipher: message authentication failed"), "rejected-set"],
    [http(400, "Vault is in migration mode; unseal requires migrate flag"), "migration-pending"],
    [http(403, "permission denied"), "failed"],
  ];
  it.each(cases)("%s -> %s", (err, outcome) => {
    expect(classifyFailure(err).outcome).toBe(outcome);
  });

  it("an unexplained 400 is what the ceremony says (unseal: a rejected set), else failed", () => {
    expect(classifyFailure(http(400, "cipher: message authentication failed"), "rejected-set").outcome).toBe(
      "rejected-set",
    );
    expect(classifyFailure(http(400, "something new")).outcome).toBe("failed");
  });

  it("a bug is not a node fault: it is rethrown", () => {
    expect(() => classifyFailure(new TypeError("x"))).toThrow(TypeError);
  });

  it("stopping outcomes stop the node; rejected-set resets it and keeps it open", async () => {
    for (const [err, state] of [
      [down(), "stopped"],
      [http(400, "no rekey in progress"), "stopped"],
      [http(400, "rotation already finished; verification must be performed"), "stopped"],
      [http(400, "verification failed"), "open"],
    ] as const) {
      const a = fakeAttempt(3);
      const t = a.target();
      const out = await outcomesOf(t, [share(1), share(2)], (i) => {
        if (i === 1) a.state.fail = err;
      });
      expect(out[1]).toBe(classifyFailure(err).outcome);
      expect(t.node.state).toBe(state);
      if (state === "open") expect(t.node).toMatchObject({ progress: 0, contributors: [] });
    }
  });
});

describe("collectDistinctShares", () => {
  it("skips duplicates and stops at the threshold", async () => {
    const got = await collectDistinctShares(fixedSource([share(1), share(1), share(2), share(3)]), 2, "x");
    expect(got.map((s) => s.origin)).toEqual(["share 1", "share 2"]);
  });
  it("refuses fewer than the threshold", async () => {
    await expect(collectDistinctShares(fixedSource([share(1), share(1)]), 2, "the migration")).rejects.toThrow(
      new UsageError("1 distinct shares given, the migration needs the threshold of 2"),
    );
  });
});

describe("rekey: resolveStart", () => {
  const idle = { started: false, verification_nonce: "" };
  const collecting = { started: true, verification_nonce: "" };
  const verifying = { started: true, verification_nonce: "v-1" };
  it.each([
    [idle, "start", { step: "start" }],
    [idle, "resume", { step: "refuse", reason: "nothing-to-resume" }],
    [idle, "verify", { step: "refuse", reason: "nothing-to-verify" }],
    [collecting, "start", { step: "refuse", reason: "in-progress" }],
    [collecting, "resume", { step: "resume-update" }],
    [collecting, "verify", { step: "refuse", reason: "still-collecting-old" }],
    [verifying, "start", { step: "refuse", reason: "in-progress" }],
    [verifying, "resume", { step: "refuse", reason: "in-verification" }],
    [verifying, "verify", { step: "verify" }],
  ] as const)("%o, %s -> %o", (status, mode, expected) => {
    expect(resolveStart(status, mode)).toEqual(expected);
  });
});

/**
 * A Shamir node as unseal sees it. A raft follower (`joinAfterMs`) answers the threshold share with "sealed,
 * progress 0" and unseals once it has joined, that long after; `migration` makes it ask for migrate=true.
 */
function fakeUnsealNode(threshold: number, opts: { joinAfterMs?: number; migration?: boolean; down?: boolean } = {}) {
  let progress = 0;
  let nonce = "";
  let sealed = true;
  let unsealAt: number | undefined;
  const keys = new Set<string>();
  const status = (): SealStatus => {
    if (unsealAt !== undefined && Date.now() >= unsealAt) sealed = false;
    return { type: "shamir", initialized: true, sealed, t: threshold, n: 5, progress, nonce } as SealStatus;
  };
  const client = {
    address: "http://127.0.0.1:1",
    sealStatus: async () => {
      if (opts.down) throw down();
      return status();
    },
    unseal: async (req: { key?: string; migrate?: boolean }) => {
      if (opts.migration && !req.migrate) throw http(400, "Vault is in migration mode; unseal requires migrate flag");
      if (!sealed) return status();
      if (!keys.has(req.key!)) {
        keys.add(req.key!);
        if (progress === 0) nonce = "n-1";
        progress++;
      }
      if (progress >= threshold) {
        progress = 0;
        nonce = "";
        if (opts.joinAfterMs === undefined) sealed = false;
        else unsealAt = Date.now() + opts.joinAfterMs;
      }
      return status();
    },
  } as unknown as VaultClient;
  return client;
}

describe("unseal over the engine", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("migration-pending: the node asks for --migrate and nothing counts", async () => {
    const events: UnsealEvent[] = [];
    const report = await runUnseal({
      clients: [fakeUnsealNode(2, { migration: true })],
      source: fixedSource([share(1), share(2)]),
      onEvent: (e) => events.push(e),
    });
    expect(report.nodes[0]).toMatchObject({ state: "sealed", progress: 0 });
    expect(report.nodes[0]!.message).toMatch(/seal migration is pending on this node: rerun with --migrate/);
    const outcomes = events.flatMap((e) => (e.kind === "share" ? e.results.map((r) => r.outcome) : []));
    expect(outcomes).toEqual(["migration-pending", "migration-pending"]);
  });

  it("node-down: an unreachable node is reported, the others unseal", async () => {
    const report = await runUnseal({
      clients: [fakeUnsealNode(2), fakeUnsealNode(2, { down: true })],
      source: fixedSource([share(1), share(2)]),
    });
    expect(report.nodes.map((n) => n.state)).toEqual(["unsealed", "unreachable"]);
  });

  it("a follower that joins 35 s after the threshold (more than the old fixed 30 s) is waited for, with progress lines", async () => {
    vi.useFakeTimers();
    const events: UnsealEvent[] = [];
    const run = runUnseal({
      clients: [fakeUnsealNode(2, { joinAfterMs: 35_000 })],
      source: fixedSource([share(1), share(2)]),
      onEvent: (e) => events.push(e),
    });
    await vi.advanceTimersByTimeAsync(40_000);
    const report = await run;
    expect(report.nodes[0]!.state).toBe("unsealed");
    const waits = events.filter((e) => e.kind === "waiting");
    expect(waits.length).toBeGreaterThanOrEqual(6); // one line every 5 s of the 35 s
    expect(waits[0]).toMatchObject({ limitMs: 300_000, what: expect.stringMatching(/joined its leader/) });
  });

  it("no-unseal: past --join-timeout the follower is reported, naming the flag", async () => {
    vi.useFakeTimers();
    const run = runUnseal({
      clients: [fakeUnsealNode(2, { joinAfterMs: 35_000 })],
      source: fixedSource([share(1), share(2)]),
      joinTimeoutMs: 10_000,
    });
    await vi.advanceTimersByTimeAsync(12_000);
    const report = await run;
    expect(report.nodes[0]!.state).toBe("sealed");
    expect(report.nodes[0]!.message).toMatch(/reached the threshold but had not unsealed .* raise --join-timeout/);
  });
});

describe("typed quorum sys API", () => {
  it("unwraps OpenBao's logical envelope (authenticated paths) and leaves Vault's top-level bodies alone", async () => {
    const { unwrapLogical } = await import("../../../src/vault/sys-quorum.js");
    // as OpenBao 2.6.2 answered GET /v1/sys/generate-root-token/attempt (request id shortened)
    const bao = {
      request_id: "df4a",
      lease_id: "",
      data: { complete: false, otp: "", otp_length: 26, progress: 0, required: 1, started: false },
    };
    expect(unwrapLogical(bao)).toEqual(bao.data);
    const vault = { nonce: "", started: false, progress: 0, required: 3, complete: false };
    expect(unwrapLogical(vault)).toBe(vault);
  });
});

describe("unseal's poll of a finishing node", () => {
  it("asks at once, then backs off to the poll interval", async () => {
    const { backoff } = await import("../../../src/ceremony/unseal.js");
    expect([0, 1, 2, 3, 4, 5, 6, 20].map((r) => backoff(r))).toEqual([0, 25, 50, 100, 200, 250, 250, 250]);
    expect(backoff(3, 60)).toBe(60);
  });
});
