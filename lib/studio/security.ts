/**
 * Request guards that run before any route: path traversal (encoded or not) is refused, a token
 * (when set) is required on every /api call and every result file, and without a token only
 * loopback host names are accepted (so a web page cannot reach the studio by DNS rebinding).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/** The cookie the page sets so `<video src>` and download links carry the token. */
export const TOKEN_COOKIE = "torchvid_token";

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** True when the URL path, decoded up to three times, has a `..` segment, a backslash or a NUL. */
export function isTraversal(rawUrl: string): boolean {
  let path = rawUrl.split("?")[0];
  for (let i = 0; i < 3; i++) {
    if (/(^|[\\/])\.\.([\\/]|$)/.test(path) || path.includes("\\") || path.includes("\0")) return true;
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return true; // a malformed escape: nothing to serve
    }
    if (decoded === path) return false;
    path = decoded;
  }
  return /(^|[\\/])\.\.([\\/]|$)/.test(path) || path.includes("\\") || path.includes("\0");
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

function cookieToken(header: string | undefined): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === TOKEN_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

export function installGuards(app: FastifyInstance, options: { token?: string; loopbackOnly: boolean }): void {
  const expected = options.token === undefined ? undefined : digest(options.token);
  const matches = (given: string | undefined) => given !== undefined && expected !== undefined && timingSafeEqual(digest(given), expected);

  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    if (isTraversal(request.raw.url ?? "/")) {
      return reply.code(400).send({ error: "The path leaves the served folders (\"..\" or an encoded form of it): ask for a file by its plain name" });
    }
    if (options.loopbackOnly && expected === undefined) {
      const host = (request.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
      if (!LOOPBACK_NAMES.has(host)) {
        return reply.code(403).send({ error: `Host ${JSON.stringify(request.headers.host ?? "")} refused: open the studio as http://127.0.0.1 or http://localhost (start it with --host and --token to serve other names)` });
      }
    }
    if (expected === undefined) return;
    const path = request.url.split("?")[0];
    const isApi = path === "/api" || path.startsWith("/api/");
    const isFile = path.startsWith("/files/");
    if (!isApi && !isFile) return; // the page's own assets hold nothing secret
    const auth = request.headers.authorization;
    const bearer = typeof auth === "string" && auth.startsWith("Bearer ") ? auth.slice(7) : undefined;
    // The API takes only the header; files also take the page's cookie (a <video> cannot send headers).
    if (matches(bearer) || (isFile && matches(cookieToken(request.headers.cookie)))) return;
    return reply
      .code(401)
      .header("www-authenticate", 'Bearer realm="torchvid"')
      .send({ error: "Missing or wrong token: send the header `Authorization: Bearer <token>` with the --token the server was started with" });
  });
}
