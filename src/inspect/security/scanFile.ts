import { FileSource } from "../../reader/fileSource.js";
import { type ScanReport, scanReportOf } from "./report.js";
import { type FileScan, scanSource } from "./scan.js";

/** The scanner's Node entry: files by path. */

export function scanFile(path: string): FileScan {
  const source = FileSource.open(path);
  try {
    return scanSource(source, { deep: true });
  } finally {
    source.close();
  }
}

export function scanReport(file: string): ScanReport {
  return scanReportOf(file, scanFile(file));
}
