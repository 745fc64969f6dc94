import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ckptBinary } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

// A DCP checkpoint's data files are scanned on a second thread too (src/inspect/sharded/parallelScans.ts).
// What the worker answers must be what this thread would have found, file for file, including the items
// that do not open and the bytes items that torch.load runs unrestricted.
const DIRS = [
  "damaged/dcp_truncated_distcp",
  "damaged/dcp_missing_rank_file",
  "damaged/dcp_malicious_bytes_item",
  "dcp/fsdp2_4ranks",
  "dcp/writer_options/one_file_per_item",
  "dcp/writer_options/large_bytes_item",
  "dcp/writer_options/recipe_app_state_2ranks",
  "dcp/safetensors_format",
].map((d) => join(SAMPLES_DIR, "sharded", d));

const twoThreads = { ...process.env, CKPT_PARALLEL_MIN_ITEMS: "1" };
const oneThread = { ...process.env, CKPT_PARALLEL_MIN_ITEMS: "1e15" };

describe("DCP data files scanned on two threads", () => {
  for (const dir of DIRS) {
    for (const command of ["inspect", "scan"]) {
      it(`${command} ${dir.slice(SAMPLES_DIR.length + 1)}: the same report as on one thread`, () => {
        const run = (env: NodeJS.ProcessEnv) => ckptBinary([command, "--json", dir], env);
        const two = run(twoThreads);
        const one = run(oneThread);
        expect(two.stderr).toBe(one.stderr);
        expect(two.status).toBe(one.status);
        expect(JSON.parse(two.stdout)).toEqual(JSON.parse(one.stdout));
      });
    }
  }

  it("the worker alone answers for every file, as this thread would, with both commands' reports", async () => {
    // The build's modules: the worker entry exists only there. Any number of items is worth a worker here.
    const before = process.env.CKPT_PARALLEL_MIN_ITEMS;
    process.env.CKPT_PARALLEL_MIN_ITEMS = "1";
    try {
      const dist = join(import.meta.dirname, "..", "dist");
      const { itemScansInParallel } = (await import(
        join(dist, "inspect", "sharded", "parallelScans.js")
      )) as typeof import("../src/inspect/sharded/parallelScans.js");
      const { startShardedScans } = (await import(
        join(dist, "inspect", "sharded", "scan.js")
      )) as typeof import("../src/inspect/sharded/scan.js");
      const { openSharded, closeSharded } = (await import(
        join(dist, "reader", "sharded", "index.js")
      )) as typeof import("../src/reader/sharded/index.js");
      const { localFiles } = (await import(
        join(dist, "inspect", "runs", "localFiles.js")
      )) as typeof import("../src/inspect/runs/localFiles.js");
      for (const dir of DIRS) {
        for (const report of ["scan", "inspect"] as const) {
          const checkpoint = openSharded(localFiles().tree, dir);
          try {
            const here = await startShardedScans(checkpoint, report).finish();
            const helper = itemScansInParallel();
            let answered: ReadonlyMap<number, unknown> | undefined;
            const pending = startShardedScans(checkpoint, report, {
              start(job) {
                const started = helper.start(job);
                expect(started, dir).toBeDefined();
                return started?.then((reports) => {
                  answered = reports;
                  return reports;
                });
              },
            });
            // Let the worker finish first: `finish` takes what is left, which is nothing.
            for (let i = 0; i < 500 && answered === undefined; i++)
              await new Promise((r) => setTimeout(r, 10));
            const both = await pending.finish();
            expect(answered?.size, `${report} ${dir}`).toBe(
              here.filter((r) => r.file !== ".metadata").length,
            );
            expect(both).toEqual(here);
          } finally {
            closeSharded(checkpoint);
          }
        }
      }
    } finally {
      if (before === undefined) delete process.env.CKPT_PARALLEL_MIN_ITEMS;
      else process.env.CKPT_PARALLEL_MIN_ITEMS = before;
    }
  });
});
