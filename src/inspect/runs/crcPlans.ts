import { crcPlanIsCurrent, type DcpCrcPlan } from "./shardedIntegrity.js";

/**
 * Items kept at most, over all plans: about 22 bytes each in columns, so ~25 MB, five steps of a 50,000-tensor
 * model saved by four ranks. Judged oldest first, a run's newest steps are the ones kept.
 */
const MAX_KEPT_ITEMS = 1_000_000;

/**
 * The CRC plans of the DCP steps `resume-plan` judged (`DcpCrcPlan`), by path, kept for the one it then
 * verifies: that step's `.metadata` need not be decoded again (~0.7 s for 200,000 items). The oldest kept
 * go first when they outgrow the bound; a step whose plan is gone is verified by decoding it anew.
 */
export class CrcPlans {
  private readonly plans = new Map<string, DcpCrcPlan>();
  private items = 0;

  keep(path: string, plan: DcpCrcPlan): void {
    this.drop(path);
    if (plan.items > MAX_KEPT_ITEMS) return;
    this.plans.set(path, plan);
    this.items += plan.items;
    for (const oldest of this.plans.keys()) {
      if (this.items <= MAX_KEPT_ITEMS) break;
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
    this.items -= plan.items;
  }
}
