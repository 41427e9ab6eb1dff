/**
 * Operator keys made by the real clients (GnuPG 2.2, age), and decryption with them: the tests prove that what
 * sealkeeper writes opens with the standard tools, and that what the tools make, sealkeeper reads.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface PgpOperator {
  name: string;
  email: string;
  fingerprint: string;
  /** Armored public key file. */
  publicKeyPath: string;
  /** Armored secret key file (protected when a passphrase was given). */
  secretKeyPath: string;
  passphrase?: string;
  gnupgHome: string;
}

export interface AgeOperator {
  name: string;
  recipient: string;
  identityPath: string;
}

/**
 * Every GNUPGHOME this process made: gpg starts a gpg-agent daemon for each, which outlives the process unless
 * stopped. They are stopped when this process exits (normally, on failure, or by process.exit after Ctrl-C), and the
 * homes are also appended to $SEALKEEPER_GPG_REGISTRY, which the integration run's global teardown reads to stop any
 * agent a worker killed by the runner left behind (test/harness/global-setup.ts).
 */
const gnupgHomes = new Set<string>();
let exitHookInstalled = false;

/** A fresh GNUPGHOME (0700) under dir, whose gpg-agent is stopped when this process exits. */
export function makeGnupgHome(dir: string): string {
  const home = join(dir, "gnupg");
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(join(home, "gpg-agent.conf"), "allow-loopback-pinentry\n");
  gnupgHomes.add(home);
  const registry = process.env.SEALKEEPER_GPG_REGISTRY;
  if (registry) appendFileSync(registry, `${home}\n`);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", stopAllGpgAgents);
  }
  return home;
}

/** Stops the gpg-agent of every GNUPGHOME this process made. */
export function stopAllGpgAgents(): void {
  for (const home of gnupgHomes) stopGpgAgent(home);
  gnupgHomes.clear();
}

function gpg(home: string, args: string[], input?: string): Buffer {
  return execFileSync("gpg", ["--homedir", home, "--batch", "--yes", "--quiet", ...args], {
    input,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/**
 * Makes a v4 key with real gpg: cv25519 (default, fast) or rsa; optionally sign-only, expired or protected.
 * Exports armored public and secret keys into dir.
 */
export function makePgpOperator(
  home: string,
  dir: string,
  name: string,
  opts: {
    algo?: "cv25519" | "rsa2048";
    passphrase?: string;
    signOnly?: boolean;
    expire?: string;
    expired?: boolean;
  } = {},
): PgpOperator {
  const email = `${name}@example.test`;
  const uid = `${name} <${email}>`;
  const pass = opts.passphrase ?? "";
  const primary = opts.algo === "rsa2048" ? "rsa2048" : "ed25519";
  const sub = opts.algo === "rsa2048" ? "rsa2048" : "cv25519";
  // expired: made two days ago (gpg's --faked-system-time) with a lifetime of one day, so it is expired whenever a
  // test runs. (A key expiring one second after creation raced a fast machine: still valid at the pre-flight, expired
  // when init sealed to it after the server answered.)
  const past = opts.expired ? ["--faked-system-time", String(Math.floor(Date.now() / 1000) - 2 * 86_400)] : [];
  const expire = opts.expired ? "1d" : (opts.expire ?? "never");
  // every key operation: at the faked time (expired keys), passphrase from the command line (loopback pinentry)
  const asOperator = [...past, "--pinentry-mode", "loopback", "--passphrase", pass];
  gpg(home, [...asOperator, "--quick-gen-key", uid, primary, "sign", expire]);
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg(home, ["--with-colons", "--list-keys", email]).toString())![1]!;
  if (!opts.signOnly) {
    gpg(home, [...asOperator, "--quick-add-key", fingerprint, sub, "encr", expire]);
  }
  const publicKeyPath = join(dir, `${name}.pub.asc`);
  const secretKeyPath = join(dir, `${name}.sec.asc`);
  writeFileSync(publicKeyPath, gpg(home, ["--armor", "--export", fingerprint]));
  writeFileSync(
    secretKeyPath,
    gpg(home, ["--pinentry-mode", "loopback", "--passphrase", pass, "--armor", "--export-secret-keys", fingerprint]),
    { mode: 0o600 },
  );
  return { name, email, fingerprint, publicKeyPath, secretKeyPath, passphrase: opts.passphrase, gnupgHome: home };
}

/**
 * Adds `donor`'s encryption subkey to `holder`'s key as one of its own (gpg's "Existing key", by keygrip), as a person
 * who moves one encryption key between two identities does, and exports `holder`'s public key again. The new subkey
 * packet has its own creation time, so its fingerprint differs from the donor's; its key material is the same.
 */
export function shareEncryptionSubkey(holder: PgpOperator, donor: PgpOperator): void {
  if (holder.gnupgHome !== donor.gnupgHome) throw new Error("both keys must live in one GNUPGHOME");
  const listing = gpg(donor.gnupgHome, [
    "--with-colons",
    "--with-keygrip",
    "--list-keys",
    donor.fingerprint,
  ]).toString();
  const grip = /^sub:[^\n]*\n(?:fpr:[^\n]*\n)?grp:+([0-9A-F]{40}):/m.exec(listing)?.[1];
  if (!grip) throw new Error(`no encryption subkey keygrip in ${donor.name}'s key`);
  execFileSync(
    "gpg",
    [
      "--homedir",
      holder.gnupgHome,
      "--batch",
      "--expert",
      "--pinentry-mode",
      "loopback",
      "--passphrase",
      holder.passphrase ?? "",
      "--command-fd",
      "0",
      "--edit-key",
      holder.fingerprint,
    ],
    { input: `addkey\n13\n${grip}\nQ\n0\nsave\n`, stdio: ["pipe", "pipe", "pipe"] },
  );
  writeFileSync(holder.publicKeyPath, gpg(holder.gnupgHome, ["--armor", "--export", holder.fingerprint]));
}

/** Decrypts a file with the real gpg (the operator's key is in home). Returns the plaintext. */
export function gpgDecrypt(op: Pick<PgpOperator, "gnupgHome" | "passphrase">, file: string): string {
  return gpg(op.gnupgHome, [
    "--pinentry-mode",
    "loopback",
    "--passphrase",
    op.passphrase ?? "",
    "--decrypt",
    file,
  ]).toString("utf8");
}

/** Makes an age identity with the real age-keygen. */
export function makeAgeOperator(dir: string, name: string): AgeOperator {
  const identityPath = join(dir, `${name}.agekey`);
  execFileSync("age-keygen", ["-o", identityPath], { stdio: "pipe" });
  const recipient = /^# public key: (age1[0-9a-z]+)$/m.exec(readFileSync(identityPath, "utf8"))![1]!;
  return { name, recipient, identityPath };
}

/** Decrypts a file with the real age. */
export function ageDecrypt(op: Pick<AgeOperator, "identityPath">, file: string): string {
  return execFileSync("age", ["-d", "-i", op.identityPath, file], { stdio: "pipe" }).toString("utf8");
}

/**
 * Stops the gpg-agent that gpg started for this GNUPGHOME, so a test file leaves no process behind; also when the
 * home was already removed (gpgconf needs it: the agent is then found by its command line, `--homedir HOME`).
 */
export function stopGpgAgent(gnupgHome: string): void {
  if (existsSync(gnupgHome)) {
    try {
      execFileSync("gpgconf", ["--homedir", gnupgHome, "--kill", "gpg-agent"], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
  let pids: string[] = [];
  try {
    const home = gnupgHome.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    pids = execFileSync("pgrep", ["-f", "-x", `gpg-agent --homedir ${home}( .*)?`], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter((p) => p !== "");
  } catch {
    // pgrep exits 1 when nothing matches
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), "SIGTERM");
    } catch {
      // gone meanwhile
    }
  }
  // A signal is delivered, not obeyed, when kill returns: wait (up to 10 s) until each agent has exited, so a caller
  // that checks next (or removes the directory) sees it gone. CI once saw the agent still listed right after.
  const deadline = Date.now() + 10_000;
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (const pid of pids) {
    while (Date.now() < deadline && isRunning(Number(pid))) Atomics.wait(tick, 0, 0, 20);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) still answers signal 0; it is no longer an agent.
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
