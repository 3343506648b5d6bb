/**
 * The sample app behind the site: a tiny HTTP API on Node's own http module, notes in MariaDB/MySQL.
 *
 *   GET  /health        → 200 {"status":"ok"}          (never touches the database: LB health checks)
 *   GET  /health/db     → 200|503 {"primary":{…},"replicas":[…]}   (database reachability, for people)
 *   GET  /api/whoami    → 200 {"host":"<hostname>"}
 *   POST /api/notes     {"text":"…"} → 201 {"id":N}    (INSERT on the primary)
 *   GET  /api/notes/N   → 200 {"id":N,"text":"…"}      (SELECT on a replica, see readNote)
 *
 * Configuration comes from the environment (systemd's EnvironmentFile=/etc/app/app.env), see config().
 * Written for Node 18 (Debian 12's nodejs), bundled with its one dependency (mysql2) by ../build.mjs.
 */
import http from 'node:http';
import os from 'node:os';
import mysql from 'mysql2/promise';

/** @param {NodeJS.ProcessEnv} env */
export function config(env) {
  const list = (s) => (s ?? '').split(/[\s,]+/).filter((x) => x !== '');
  const int = (s, d) => (s !== undefined && s !== '' && Number.isInteger(Number(s)) ? Number(s) : d);
  return {
    /** Address and port the HTTP server listens on (nginx proxies to it). */
    bind: env.BIND || '127.0.0.1',
    port: int(env.PORT, 3000),
    /** Where notes are written. */
    primary: env.DB_PRIMARY_HOST || '127.0.0.1',
    /** Where notes are read; empty: read from the primary. */
    replicas: list(env.DB_REPLICA_HOSTS),
    dbPort: int(env.DB_PORT, 3306),
    database: env.DB_NAME || 'app',
    user: env.DB_USER || 'app',
    password: env.DB_PASSWORD ?? '',
    /** How long a read waits for a note to reach a replica (replication lag) before asking the primary. */
    replicaWaitMs: int(env.REPLICA_WAIT_MS, 1000),
    /** Connect timeout for the database, so that a dead database fails a request fast. */
    connectTimeoutMs: int(env.DB_CONNECT_TIMEOUT_MS, 2000),
  };
}

/** Largest note accepted, in characters (a TEXT column holds 65535 bytes). */
const MAX_TEXT = 16384;
const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A database that cannot be reached (as opposed to a query that failed on a live server). */
function isUnavailable(err) {
  const code = err && err.code;
  return ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN'].includes(code) || (err && err.fatal === true);
}

export function createApp(cfg, {hostname = os.hostname(), log = console} = {}) {
  const pool = (host) =>
    mysql.createPool({
      host,
      port: cfg.dbPort,
      user: cfg.user,
      password: cfg.password,
      database: cfg.database,
      connectTimeout: cfg.connectTimeoutMs,
      connectionLimit: 5,
      maxIdle: 2,
      idleTimeout: 60000,
      enableKeepAlive: true,
      supportBigNumbers: true,
      bigNumberStrings: false,
    });
  // Pools connect lazily: the app starts (and /health answers) whether or not the database is up.
  const primary = {host: cfg.primary, pool: pool(cfg.primary)};
  const replicas = cfg.replicas.map((host) => ({host, pool: pool(host)}));
  let next = 0;

  /** Replicas in round-robin order, so that reads spread over them. */
  function replicaOrder() {
    if (replicas.length === 0) return [];
    const start = next++ % replicas.length;
    return [...replicas.slice(start), ...replicas.slice(0, start)];
  }

  async function select(db, id) {
    const [rows] = await db.pool.execute('SELECT id, text FROM notes WHERE id = ?', [id]);
    return rows.length > 0 ? {id: Number(rows[0].id), text: String(rows[0].text)} : null;
  }

  /**
   * Read a note from a replica. A note written a moment ago may not have reached the replica yet:
   * poll the replicas every 100 ms for up to `replicaWaitMs`, then ask the primary once, so that a
   * client always reads its own writes and a missing id is a real 404. When no replica can be
   * reached at all the primary answers at once. `source` says which server answered.
   */
  async function readNote(id) {
    const deadline = Date.now() + cfg.replicaWaitMs;
    let reachable = false;
    for (;;) {
      for (const r of replicaOrder()) {
        try {
          const note = await select(r, id);
          reachable = true;
          if (note) return {note, source: r.host};
        } catch (err) {
          if (!isUnavailable(err)) throw err;
          log.error(`replica ${r.host}: ${err.code ?? err.message}`);
        }
      }
      if (!reachable || Date.now() >= deadline) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    return {note: await select(primary, id), source: primary.host};
  }

  async function ping(db) {
    const t0 = Date.now();
    try {
      await db.pool.query('SELECT 1');
      return {host: db.host, ok: true, ms: Date.now() - t0};
    } catch (err) {
      return {host: db.host, ok: false, error: err.code ?? err.message};
    }
  }

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (c) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new HttpError(413, 'request body too large'));
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  function send(res, status, body, headers = {}) {
    const json = JSON.stringify(body);
    res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json), 'Cache-Control': 'no-store', ...headers});
    res.end(json);
  }

  async function route(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const only = (...methods) => {
      if (!methods.includes(method)) throw new HttpError(405, `method ${method} not allowed on ${path}`);
    };

    if (path === '/health') {
      only('GET', 'HEAD');
      return send(res, 200, {status: 'ok'});
    }
    if (path === '/health/db') {
      only('GET', 'HEAD');
      const [p, ...rs] = await Promise.all([ping(primary), ...replicas.map(ping)]);
      return send(res, p.ok ? 200 : 503, {primary: p, replicas: rs});
    }
    if (path === '/api/whoami') {
      only('GET', 'HEAD');
      return send(res, 200, {host: hostname});
    }
    if (path === '/api/notes') {
      only('POST');
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(400, 'body must be JSON: {"text": "..."}');
      }
      const text = body && typeof body === 'object' ? body.text : undefined;
      if (typeof text !== 'string' || text === '') throw new HttpError(400, '"text" must be a non-empty string');
      if (text.length > MAX_TEXT) throw new HttpError(413, `"text" is longer than ${MAX_TEXT} characters`);
      const [result] = await primary.pool.execute('INSERT INTO notes (text) VALUES (?)', [text]);
      const id = Number(result.insertId);
      return send(res, 201, {id}, {Location: `/api/notes/${id}`, 'X-Notes-Source': primary.host});
    }
    const m = /^\/api\/notes\/(\d{1,18})$/.exec(path);
    if (m) {
      only('GET', 'HEAD');
      const {note, source} = await readNote(m[1]);
      if (!note) throw new HttpError(404, `no note ${m[1]}`);
      return send(res, 200, note, {'X-Notes-Source': source});
    }
    throw new HttpError(404, `no route ${method} ${path}`);
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch((err) => {
      if (err instanceof HttpError) return send(res, err.status, {error: err.message});
      if (isUnavailable(err)) {
        log.error(`database unavailable: ${err.code ?? err.message}`);
        return send(res, 503, {error: 'database unavailable'});
      }
      log.error(`${req.method} ${req.url}: ${err.stack ?? err}`);
      return send(res, 500, {error: 'internal error'});
    });
  });
  server.keepAliveTimeout = 65000; // longer than nginx's upstream keepalive

  async function close() {
    await new Promise((res) => server.close(() => res()));
    await Promise.allSettled([primary, ...replicas].map((db) => db.pool.end()));
  }

  return {server, close};
}

/** Entry point: listen, and shut down cleanly on SIGTERM/SIGINT (systemd stop/restart). */
export function main(env = process.env) {
  const cfg = config(env);
  const {server, close} = createApp(cfg);
  server.listen(cfg.port, cfg.bind, () => {
    console.log(`app listening on ${cfg.bind}:${cfg.port}; primary ${cfg.primary}, replicas ${cfg.replicas.join(',') || '(none)'}`);
  });
  server.on('error', (err) => {
    console.error(`cannot listen on ${cfg.bind}:${cfg.port}: ${err.message}`);
    process.exit(1);
  });
  const stop = (sig) => {
    console.log(`${sig}: shutting down`);
    setTimeout(() => process.exit(0), 5000).unref();
    server.closeIdleConnections?.();
    close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
