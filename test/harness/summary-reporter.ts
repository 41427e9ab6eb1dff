import type { Reporter, TestModule } from "vitest/node";

/**
 * Prints one plain closing line, "tests: N passed, N failed, N skipped", after vitest's own report, so that any
 * CI reader can count the tests without parsing vitest's output; before it, one line per failure naming its project
 * (unit, integration-vault, integration-openbao: the server it ran against), file and test; and the per-project
 * counts when there is more than one project.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const total = { passed: 0, failed: 0, skipped: 0 };
    const perProject = new Map<string, { passed: number; failed: number; skipped: number }>();
    const failures: string[] = [];
    for (const mod of testModules) {
      const project = mod.project.name || "default";
      const counts = perProject.get(project) ?? { passed: 0, failed: 0, skipped: 0 };
      perProject.set(project, counts);
      const count = (key: "passed" | "failed" | "skipped") => {
        total[key]++;
        counts[key]++;
      };
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") count("passed");
        else if (state === "failed") {
          count("failed");
          failures.push(`FAIL [${project}] ${mod.relativeModuleId} > ${test.fullName}`);
        } else count("skipped");
      }
      // a file that failed outside its tests (load error, beforeAll) counts as one failure even though each of its
      // tests reports "skipped"
      if (mod.state() === "failed" && ![...mod.children.allTests()].some((t) => t.result().state === "failed")) {
        count("failed");
        failures.push(`FAIL [${project}] ${mod.relativeModuleId} (outside its tests: load error or hook)`);
      }
    }
    const line = (c: { passed: number; failed: number; skipped: number }) =>
      `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
    let out = failures.length > 0 ? `\n${failures.join("\n")}\n` : "";
    if (perProject.size > 1) {
      for (const [name, c] of [...perProject].sort(([a], [b]) => a.localeCompare(b))) out += `\n${name}: ${line(c)}`;
      out += "\n";
    }
    process.stdout.write(`${out}\ntests: ${line(total)}\n`);
  }
}
