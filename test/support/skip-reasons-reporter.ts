import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

/**
 * Lists every skipped test at the end of a run with the reason in its suite's or its own name
 * (test/support: requirePostgres, requireChromium put the reason there). A run that skips must
 * say why: "10 skipped" alone reads like a pass (issue #15).
 */
export default class SkipReasonsReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    const groups = new Map<string, number>();
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        // Skipped on purpose (skipIf, skip), not left unrun by a failed hook: that is a failure, reported as one.
        if (test.result().state !== 'skipped' || test.options.mode !== 'skip') continue;
        // The outermost skipped suite names the requirement (describe.skipIf); a lone test names its own.
        type Node = { name: string; type: string; options?: { mode?: string }; parent?: unknown };
        let outer: Node = test;
        for (let parent = test.parent as Node; parent.type === 'suite' && parent.options?.mode === 'skip'; parent = parent.parent as Node) outer = parent;
        const key = `${path.relative(process.cwd(), module.moduleId)} › ${outer.name}`;
        groups.set(key, (groups.get(key) ?? 0) + 1);
      }
    }
    if (groups.size === 0) return;
    const total = [...groups.values()].reduce((a, b) => a + b, 0);
    const lines = [...groups].map(([key, count]) => `  ↓ ${key} (${count} test${count === 1 ? '' : 's'})`);
    process.stdout.write(`\nSkipped ${total} test${total === 1 ? '' : 's'}, and why:\n${lines.join('\n')}\n`);
  }
}
