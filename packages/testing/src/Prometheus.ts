/**
 * Prometheus's text format, parsed (the `parse-prometheus-text-format`
 * package, whose output is prom2json's: the types below), for the `/metrics` tests.
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
export const parse = (text: string): Array<Family> => parseText(text) as Array<Family>
