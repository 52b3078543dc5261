/**
 * A stand-in for huggingface.co on 127.0.0.1 (random port) that answers the routes
 * @huggingface/hub calls, as the real Hub does (read from the library's source):
 *   GET  /api/models/ORG/NAME/revision/REV      modelInfo   -> { id, sha, siblings, ... }
 *   GET  /api/models/ORG/NAME/tree/REV?recursive listFiles  -> [{ type, path, size, oid, lfs }]
 *   GET  /ORG/NAME/resolve/REV/PATH              fileDownloadInfo / downloadFile, with Range,
 *        ETag (git oid, or X-Linked-Etag = sha256 for LFS files), X-Repo-Commit, Content-Range.
 * Errors carry the Hub's X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound) and JSON body.
 * A repo can require a token (401 without it, 403 for another), and a file can be cut off after
 * N bytes, to test resuming.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface FakeRepo {
  /** Repo-relative path -> contents. */
  files: Map<string, Buffer>;
  commit: string;
  /** Only this token may read the repo (401 without a token, 403 with another). */
  token?: string;
}

export interface RequestLog {
  method: string;
  url: string;
  range?: string;
  auth?: string;
}

export interface FakeHub {
  url: string;
  repos: Map<string, FakeRepo>;
  requests: RequestLog[];
  /** Cut the next `times` full downloads of `path` after `bytes` bytes (the socket is destroyed). */
  dropAfter(path: string, bytes: number, times?: number): void;
  /**
   * Stream the next `times` full downloads of `path` in `chunks` parts, `delayMs` apart, so a
   * client sees it arrive over time (a loopback server otherwise sends a file in one go, faster
   * than any progress interval).
   */
  pace(path: string, options: { chunks: number; delayMs: number; times?: number }): void;
  close(): Promise<void>;
}

/** Every file under `dir` as repo-relative paths. */
export function readRepoFolder(dir: string, prefix = ""): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) for (const [k, v] of readRepoFolder(dir, rel)) files.set(k, v);
    else files.set(rel, readFileSync(join(dir, rel)));
  }
  return files;
}

export const isLfs = (path: string) => /\.(safetensors|bin|pt|ckpt)$/.test(path);
export const gitOid = (data: Buffer) => createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
export const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
/** The name huggingface_hub gives the blob of a file: sha256 for LFS files, the git oid otherwise. */
export const etagOf = (path: string, data: Buffer) => (isLfs(path) ? sha256(data) : gitOid(data));

export function fakeCommit(seed: string): string {
  return createHash("sha1").update(seed).digest("hex");
}

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const map = new Map(Object.entries(repos));
  const requests: RequestLog[] = [];
  const drops = new Map<string, { bytes: number; times: number }>();
  const paces = new Map<string, { chunks: number; delayMs: number; times: number }>();

  function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    res.writeHead(status, { "Content-Type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }

  /** The repo, or null after answering 401/403/404 as the Hub does. */
  function access(req: IncomingMessage, res: ServerResponse, name: string): FakeRepo | null {
    const repo = map.get(name);
    const auth = req.headers.authorization?.replace(/^Bearer /, "");
    if (!repo) {
      // The real Hub answers 401 for a missing repo without a token (it may be private); 404 with one.
      json(res, auth ? 404 : 401, { error: "Repository Not Found" }, { "X-Error-Code": "RepoNotFound" });
      return null;
    }
    if (repo.token && !auth) {
      json(res, 401, { error: "Access to this repo is restricted: you must be authenticated" }, { "X-Error-Code": "GatedRepo" });
      return null;
    }
    if (repo.token && auth !== repo.token) {
      json(res, 403, { error: "Access to this repo is restricted and you are not in the authorized list" }, { "X-Error-Code": "GatedRepo" });
      return null;
    }
    return repo;
  }

  function revisionOk(repo: FakeRepo, rev: string) {
    return rev === "main" || rev === "HEAD" || rev === repo.commit;
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push({ method: req.method ?? "", url: url.pathname + url.search, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    let m: RegExpMatchArray | null;
    if (parts[0] === "api" && parts[1] === "models" && (parts[4] === "revision" || parts[4] === "tree")) {
      const name = `${parts[2]}/${parts[3]}`;
      const repo = access(req, res, name);
      if (!repo) return;
      if (!revisionOk(repo, parts[5] ?? "")) return json(res, 404, { error: `Invalid rev id: ${parts[5]}` }, { "X-Error-Code": "RevisionNotFound" });
      if (parts[4] === "revision") {
        return json(res, 200, {
          _id: fakeCommit(name).slice(0, 24),
          id: name,
          sha: repo.commit,
          private: !!repo.token,
          gated: false,
          downloads: 0,
          likes: 0,
          lastModified: "2026-01-01T00:00:00.000Z",
          pipeline_tag: "text-to-video",
          siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
        });
      }
      const dirs = new Set<string>();
      const entries: unknown[] = [];
      for (const [path, data] of repo.files) {
        const segs = path.split("/");
        for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join("/"));
        entries.push({ type: "file", oid: gitOid(data), size: data.length, path, ...(isLfs(path) ? { lfs: { oid: sha256(data), size: data.length, pointerSize: 134 } } : {}) });
      }
      return json(res, 200, [...[...dirs].map((path) => ({ type: "directory", oid: fakeCommit(path), size: 0, path })), ...entries]);
    }
    if ((m = url.pathname.match(/^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/))) {
      const [, org, nm, rev, rawPath] = m;
      const repo = access(req, res, `${org}/${nm}`);
      if (!repo) return;
      if (!revisionOk(repo, decodeURIComponent(rev!))) return json(res, 404, { error: "Revision Not Found" }, { "X-Error-Code": "RevisionNotFound" });
      const path = decodeURIComponent(rawPath!);
      const data = repo.files.get(path);
      if (!data) return json(res, 404, { error: "Entry not found" }, { "X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit });
      const headers: Record<string, string> = {
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        ETag: `"${gitOid(data)}"`,
        "X-Repo-Commit": repo.commit,
      };
      if (isLfs(path)) Object.assign(headers, { "X-Linked-Etag": `"${sha256(data)}"`, "X-Linked-Size": String(data.length) });
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
      let start = 0;
      let end = data.length - 1;
      if (range) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
        if (start >= data.length) {
          res.writeHead(416, { "Content-Range": `bytes */${data.length}` });
          return res.end();
        }
        headers["Content-Range"] = `bytes ${start}-${end}/${data.length}`;
      }
      const body = data.subarray(start, end + 1);
      res.writeHead(range ? 206 : 200, { ...headers, "Content-Length": String(body.length) });
      const drop = drops.get(path);
      // A probe (bytes=0-0) is never cut: @huggingface/hub sends one before each download.
      if (drop && drop.times > 0 && body.length > drop.bytes) {
        drop.times--;
        res.write(body.subarray(0, drop.bytes), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      const pace = paces.get(path);
      if (pace && pace.times > 0 && body.length > 1) {
        pace.times--;
        const size = Math.ceil(body.length / pace.chunks);
        const send = (offset: number): void => {
          if (offset + size >= body.length) return void res.end(body.subarray(offset));
          res.write(body.subarray(offset, offset + size), () => setTimeout(() => send(offset + size), pace.delayMs));
        };
        return send(0);
      }
      return res.end(body);
    }
    json(res, 404, { error: `fake hub: no route for ${req.method} ${url.pathname}` });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    repos: map,
    requests,
    dropAfter(path, bytes, times = 1) {
      drops.set(path, { bytes, times });
    },
    pace(path, { chunks, delayMs, times = 1 }) {
      paces.set(path, { chunks, delayMs, times });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
