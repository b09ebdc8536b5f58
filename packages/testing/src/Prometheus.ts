/**
 * Prometheus's text format, parsed (the `parse-prometheus-text-format`
 * package, output as prom2json's), with types: what the `/metrics` tests read.
 */
import parseText from "parse-prometheus-text-format"

export interface Sample {
  readonly value?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly buckets?: Readonly<Record<string, string>>
  readonly count?: string
  readonly sum?: string
}

export interface Family {
  readonly name: string
  readonly help: string
  readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"
  readonly metrics: ReadonlyArray<Sample>
}

/** The metric families of a scrape; throws on text that is not the format. */
export const parse = (text: string): Array<Family> => parseText(text)
