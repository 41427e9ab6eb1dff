/** One measured workload. `msPerOp` is the mean wall time of one operation; `note` says how it was measured. */
export interface BenchResult {
  name: string;
  opsPerSec?: number;
  msPerOp: number;
  note?: string;
}
