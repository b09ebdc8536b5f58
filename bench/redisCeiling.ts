/**
 * Redis's own ceiling for the commands of the publish path, measured with
 * `redis-benchmark` (installed beside redis-server): what bench/redis.ts and
 * bench/cluster.ts print under their own figures.
 */
import { execFileSync } from "node:child_process"

/** Runs `redis-benchmark -q` with `args` against `url`: `requests` requests from 50 clients; its rate line. */
export const redisBenchmark = (url: string, requests: number) => {
  const { port, hostname } = new URL(url)
  return (args: ReadonlyArray<string>): string =>
    execFileSync("redis-benchmark", ["-h", hostname, "-p", port || "6379", "-n", String(requests), "-c", "50", "-q", ...args], {
      encoding: "utf8",
      timeout: 30_000
    }).trim().split("\r").pop()!.split(": ").pop()!.trim()
}

/** The publish script called as `RedisHistory` calls it, with `lines` lines of `payload` (room limits at their defaults). */
export const publishArgs = (
  sha: string,
  keys: { readonly meta: string; readonly stream: string; readonly channel: string },
  lines: number,
  payload: string
): Array<string> => [
  "EVALSHA", sha, "2", keys.meta, keys.stream, keys.channel, "e0", "1000", "4194304", "600000", "600000", "mE", "mO", "mT",
  ...Array.from({ length: lines }, () => ["0", payload]).flat()
]
