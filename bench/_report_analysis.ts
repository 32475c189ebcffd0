// The hand-written analysis a benchmark report keeps when its benchmark rewrites it: the section between
// these markers is carried from the old file into the new one.

export const ANALYSIS_START =
  "<!-- analysis:start (hand-written; kept when the benchmark rewrites this file) -->";
export const ANALYSIS_END = "<!-- analysis:end -->";

/** The hand-written analysis between the markers of an earlier report, if there is one. */
export function extractAnalysis(existing: string | undefined): string | undefined {
  if (!existing) return undefined;
  const start = existing.indexOf(ANALYSIS_START), end = existing.indexOf(ANALYSIS_END);
  return start >= 0 && end > start ? existing.slice(start + ANALYSIS_START.length, end).trim() : undefined;
}

/** The analysis section of a report: the markers around `analysis`, or a placeholder. */
export function analysisSection(analysis: string | undefined): string[] {
  return ["## Analysis", "", ANALYSIS_START, analysis ?? "_Not written yet._", ANALYSIS_END, ""];
}
