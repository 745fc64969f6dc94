import { crcPlanIsCurrent, type DcpCrcPlan } from "./shardedIntegrity.js";

/**
 * What the kept plans may cost together (`DcpCrcPlan.bytes`): ~32 MB, four steps of a 50,000-tensor model
 * saved by four ranks (200,000 items and 50,000 labels, 7.1 MB, each). Judged oldest first, a run's newest steps are the
 * ones kept. The bound is one plan's (`planRun`); an audit planning runs on N workers keeps up to N times it.
 */
const MAX_KEPT_BYTES = 32 * 1024 * 1024;

/**
 * The CRC plans of the DCP steps `resume-plan` judged (`DcpCrcPlan`), by path, kept for the one it then
 * verifies: that step's `.metadata` need not be decoded again (~0.7 s for 200,000 items). The oldest kept
 * go first when they outgrow the bound; a step whose plan is gone is verified by decoding it anew.
 */
export class CrcPlans {
  private readonly plans = new Map<string, DcpCrcPlan>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(maxBytes = MAX_KEPT_BYTES) {
    this.maxBytes = maxBytes;
  }

  keep(path: string, plan: DcpCrcPlan): void {
    this.drop(path);
    if (plan.bytes > this.maxBytes) return;
    this.plans.set(path, plan);
    this.bytes += plan.bytes;
    for (const oldest of this.plans.keys()) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(oldest);
    }
  }

  /** The plan kept for `path`, given up by the cache, when its files are as they were. */
  take(path: string): DcpCrcPlan | undefined {
    const plan = this.plans.get(path);
    this.drop(path);
    return plan && crcPlanIsCurrent(plan) ? plan : undefined;
  }

  private drop(path: string): void {
    const plan = this.plans.get(path);
    if (!plan) return;
    this.plans.delete(path);
    this.bytes -= plan.bytes;
  }
}
