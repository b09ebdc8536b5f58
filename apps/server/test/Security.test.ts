import { afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Certificates from "@tether/testing/Certificates"
import * as P from "./fixtures/Processes.js"

beforeAll(P.assertBuilt)
afterEach(P.killAll)

const certs = Certificates.make()
const tls = ["--tls-cert", certs.files.serverCert, "--tls-key", certs.files.serverKey]
const temp = () => fs.mkdtempSync(path.join(os.tmpdir(), "tether-sec-"))

describe("tether-server and tether-client over TLS", () => {
  it("chat over TLS end to end; a plaintext client is closed and the server carries on", async () => {
    const { port, server } = await P.startServer([...tls, "--log-format", "json"])
    assert.match(server.output(), /"tls":"on"/)
    const carol = P.start(P.clientBin, ["--port", String(port), "--user", "carol", "--tls", "--tls-ca", certs.files.ca])
    await server.waitFor(/"message":"logged in".*"user":"carol"/, 15_000)
    const alice = P.start(P.clientBin, ["--port", String(port), "--user", "alice", "--tls", "--tls-ca", certs.files.ca, "--say", "over tls"])
    assert.strictEqual(await alice.exited(15_000), 0, alice.output())
    await carol.waitFor(/<alice> over tls/, 15_000)
    // A client speaking plain TCP to it: no session, a closed connection, a non-zero exit.
    const plain = P.start(P.clientBin, ["--port", String(port), "--user", "plain", "--say", "hi", "--connect-timeout", "2s"])
    assert.notStrictEqual(await plain.exited(15_000), 0, plain.output())
    assert.notMatch(server.output(), /"user":"plain"/)
    // A client that does not trust the server's certificate cannot connect (exit 4).
    const untrusting = P.start(P.clientBin, ["--port", String(port), "--user", "dan", "--tls", "--tls-ca", certs.files.otherCa, "--say", "hi"])
    assert.strictEqual(await untrusting.exited(15_000), 4, untrusting.output())
    const bob = P.start(P.clientBin, ["--port", String(port), "--user", "bob", "--tls", "--insecure", "--say", "still here"])
    assert.strictEqual(await bob.exited(15_000), 0, bob.output())
    server.proc.kill("SIGTERM")
    assert.strictEqual(await server.exited(15_000), 0)
    carol.proc.stdin.end()
  }, 90_000)

  it("client-certificate auth: without a certificate the client is refused; with one from the CA it chats", async () => {
    const { port } = await P.startServer([...tls, "--tls-ca", certs.files.ca, "--tls-client-auth"])
    const bare = P.start(P.clientBin, ["--port", String(port), "--user", "eve", "--tls", "--tls-ca", certs.files.ca, "--say", "hi"])
    assert.notStrictEqual(await bare.exited(15_000), 0, bare.output())
    const withCert = P.start(P.clientBin, [
      "--port", String(port), "--user", "frank", "--tls", "--tls-ca", certs.files.ca,
      "--tls-cert", certs.files.clientCert, "--tls-key", certs.files.clientKey, "--say", "hi"
    ])
    assert.strictEqual(await withCert.exited(15_000), 0, withCert.output())
  }, 90_000)
})

describe("credentials", () => {
  it("users add stores a hash; the password comes from the environment or a file, never argv; tokens log in", async () => {
    const dir = temp()
    const users = path.join(dir, "users.json")
    const add = P.start(P.serverBin, ["users", "add", "alice", "--users", users], { env: { TETHER_PASSWORD: "s3cret-a" } })
    assert.strictEqual(await add.exited(15_000), 0, add.output())
    const addPiped = P.start(P.serverBin, ["users", "add", "__proto__", "--users", users])
    addPiped.proc.stdin.end("s3cret-p\n")
    assert.strictEqual(await addPiped.exited(15_000), 0, addPiped.output())
    const stored = fs.readFileSync(users, "utf8")
    assert.notInclude(stored, "s3cret")
    assert.match(stored, /"alice": "scrypt\$/)

    const secret = path.join(dir, "secret")
    fs.writeFileSync(secret, "a-token-secret-of-more-than-32-bytes\n")
    const { port, server } = await P.startServer(["--users", users, "--token-secret-file", secret, "--log-format", "json"])
    const say = (user: string, env: Record<string, string>, extra: ReadonlyArray<string> = []) =>
      P.start(P.clientBin, ["--port", String(port), "--user", user, "--say", "hi", ...extra], { env })
    const good = say("alice", { TETHER_PASSWORD: "s3cret-a" })
    assert.strictEqual(await good.exited(15_000), 0, good.output())
    const proto = say("__proto__", { TETHER_PASSWORD: "s3cret-p" })
    assert.strictEqual(await proto.exited(15_000), 0, proto.output())
    const wrong = say("alice", { TETHER_PASSWORD: "nope" })
    assert.strictEqual(await wrong.exited(15_000), 3, wrong.output())
    await server.waitFor(/"message":"login failed".*"user":"alice"/, 15_000)
    const passwordFile = path.join(dir, "pw")
    fs.writeFileSync(passwordFile, "s3cret-a\n")
    // The failure above slows alice's next login down a little; it still gets in.
    const fromFile = say("alice", {}, ["--password-file", passwordFile])
    assert.strictEqual(await fromFile.exited(15_000), 0, fromFile.output())

    const mint = P.start(P.serverBin, ["token", "mint", "carol", "--ttl", "5m", "--token-secret-file", secret])
    assert.strictEqual(await mint.exited(15_000), 0, mint.output())
    const token = mint.output().trim()
    assert.match(token, /^tether1\.[\w-]+\.[\w-]+$/)
    const withToken = say("carol", { TETHER_TOKEN: token })
    assert.strictEqual(await withToken.exited(15_000), 0, withToken.output())
    const stolen = say("dave", { TETHER_TOKEN: token })
    assert.strictEqual(await stolen.exited(15_000), 3, stolen.output())
  }, 90_000)

  it("an old plaintext users file is refused with how to migrate", async () => {
    const users = path.join(temp(), "users.json")
    fs.writeFileSync(users, JSON.stringify({ alice: "plaintext" }))
    const server = P.start(P.serverBin, ["--port", "0", "--users", users])
    assert.strictEqual(await server.exited(15_000), 2)
    assert.match(server.output(), /not a scrypt hash.*tether-server users add/)
  }, 90_000)
})
