/**
 * Carries out a plan's steps on a running cluster: writes by clients and the backend, flushes,
 * pauses and faults. Faults that last (a stopped client, a killed process, a client away) go on
 * in the background while later steps run; a process being restarted makes its writes wait for
 * it. `heal()` ends every fault and waits for every process to be back, within a bound.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Cluster, canSkewClocks } from './cluster.js';
import type { History, StepRecord } from './history.js';
import type { Step } from './plan.js';
import type { SoakSchema } from './schema.js';
import { applyRawSql, type LoggedChange } from './writes.js';

const CALL_MS = 15_000;

function message(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0];
}

/** Waits for `work` at most `ms`; false when it did not settle in time (its rejection is swallowed). */
async function bounded(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([
    settled,
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
  ]);
  clearTimeout(timer);
  return result;
}

/**
 * Runs steps one after the other on `cluster`, recording each outcome in `history`.
 *
 * @example
 *   const runner = new StepRunner(cluster, history, s);
 *   for (const step of plan.steps) await runner.run(step);
 *   await runner.heal(60_000);
 */
export class StepRunner {
  private readonly background = new Set<Promise<unknown>>();
  /** Faults of one client run one after the other. */
  private readonly chains: Promise<unknown>[];
  /** Set while the server is down (killed, not yet back). */
  private serverBack: Promise<void> | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly history: History,
    private readonly s: SoakSchema,
  ) {
    this.chains = cluster.clients.map(() => Promise.resolve());
  }

  private inBackground(work: Promise<unknown>): void {
    const settled = work.catch((error) =>
      this.history.errors.push({ who: 'harness', message: `background fault failed: ${message(error)}` }),
    );
    this.background.add(settled);
    void settled.finally(() => this.background.delete(settled));
  }

  private onClient(index: number, work: () => Promise<void>): void {
    const next = this.chains[index].then(work);
    this.chains[index] = next.catch(() => {});
    this.inBackground(next);
  }

  /** Carries out one step (a lasting fault only starts here). */
  async run(step: Step): Promise<void> {
    const record: StepRecord = { step, outcome: 'ok' };
    this.history.steps.push(record);
    try {
      switch (step.kind) {
        case 'pause':
          await sleep(step.ms);
          return;
        case 'flush':
          this.flush(step.client);
          return;
        case 'write':
          this.history.ops++;
          await this.write(step, record);
          return;
        case 'fault':
          await this.fault(step, record);
          return;
      }
    } catch (error) {
      record.outcome = 'failed';
      record.detail = message(error);
    }
  }

  private flush(index: number): void {
    const slot = this.cluster.clients[index];
    const child = slot.child;
    if (!child) return;
    const work = child.call('flush', undefined, CALL_MS).then(
      () => this.history.flushes.ok++,
      () => this.history.flushes.failed++,
    );
    this.inBackground(work);
  }

  private async write(step: Extract<Step, { kind: 'write' }>, record: StepRecord): Promise<void> {
    if (step.by === 'client') {
      const slot = this.cluster.clients[step.client!];
      if (!(await bounded(slot.ready, CALL_MS)) || !slot.child) {
        record.outcome = 'skipped';
        record.detail = 'the client process is not up';
        return;
      }
      await slot.child.call('write', step, CALL_MS);
      return;
    }
    const direct = step.by === 'raw-sql' ? await this.cluster.deployment.direct() : undefined;
    let logged: LoggedChange[];
    if (direct) {
      logged = await applyRawSql(direct, this.s, step.writes, step.truncate ?? false);
    } else {
      const server = this.cluster.server;
      if (!server || this.serverBack) {
        record.outcome = 'skipped';
        record.detail = 'the server is down';
        return;
      }
      logged = await server.call<LoggedChange[]>('write', step, CALL_MS);
    }
    this.history.backendWrite(step.id, logged);
  }

  private async fault(step: Extract<Step, { kind: 'fault' }>, record: StepRecord): Promise<void> {
    const slot = step.client === undefined ? undefined : this.cluster.clients[step.client];
    const skip = (why: string) => {
      record.outcome = 'skipped';
      record.detail = why;
      this.history.skippedFaults.set(step.fault, why);
    };
    switch (step.fault) {
      case 'cut':
        slot!.proxy.cutAfter(step.bytes!, step.toServer!);
        break;
      case 'stall':
        slot!.proxy.stall(step.ms);
        break;
      case 'delay':
        slot!.proxy.delay(5 + (step.ms % 80), step.ms);
        break;
      case 'terminate':
        if (this.cluster.deployment.kind !== 'postgres') return skip('PGlite has no sessions to terminate');
        record.detail = `${await this.cluster.deployment.terminateServerSessions()} sessions`;
        break;
      case 'kill-server': {
        if (this.serverBack) return skip('the server is already down');
        await this.cluster.killServer();
        const back = (async () => {
          await sleep(step.ms);
          // As a supervisor would: a start that failed (a terminate fault can end the new server's
          // session while it installs capture, and it exits) is tried again, twice at most; a
          // server that cannot start three times running is a violation.
          for (let attempt = 1; ; attempt++) {
            try {
              await this.cluster.startServer();
              return;
            } catch (error) {
              if (attempt >= 3) throw error;
              this.history.errors.push({
                who: 'supervisor',
                message: `server start failed, started again: ${message(error)}`,
              });
              await sleep(100);
            }
          }
        })();
        this.serverBack = back;
        this.inBackground(back.finally(() => (this.serverBack = undefined)));
        break;
      }
      case 'stop-start':
        this.onClient(slot!.index, async () => {
          await slot!.ready;
          await slot!.child?.call('stop', undefined, CALL_MS);
          await sleep(step.ms);
          await slot!.child?.call('start', undefined, CALL_MS);
        });
        break;
      case 'kill-client':
        this.onClient(slot!.index, async () => {
          await slot!.ready;
          const child = slot!.child;
          if (!child) return;
          // Writes wait for the new process from the moment the old one is doomed.
          let back!: () => void;
          slot!.ready = new Promise<void>((resolve) => (back = resolve));
          try {
            const write = child.call('write', { kind: 'write', by: 'client', writes: step.writes }, CALL_MS);
            write.catch(() => {});
            await sleep(step.killAfterMs ?? 0);
            await this.cluster.killClient(slot!);
            await sleep(step.ms);
            await this.cluster.spawnClient(slot!);
          } finally {
            back();
          }
        });
        record.outcome = 'indeterminate';
        break;
      case 'skew':
        if (!canSkewClocks()) return skip('libfaketime is not installed (apt-get install libfaketime)');
        this.onClient(slot!.index, async () => {
          await slot!.ready;
          let back!: () => void;
          slot!.ready = new Promise<void>((resolve) => (back = resolve));
          try {
            await slot!.child?.call('stop', undefined, CALL_MS).catch(() => {});
            await this.cluster.killClient(slot!);
            slot!.skewMs = step.skewMs!;
            await this.cluster.spawnClient(slot!);
          } finally {
            back();
          }
        });
        break;
      case 'away':
        this.onClient(slot!.index, async () => {
          slot!.proxy.setRefusing(true);
          await sleep(step.ms);
          // Everything the server logged while the client was away (and before) is pruned.
          await this.serverBack;
          const server = this.cluster.server;
          // A kill-server fault may take the server down meanwhile: then nothing is pruned. The
          // ticks of what is pruned stay known (log-order.ts keeps a copy of each).
          // A terminate fault may end the prune's session: it is asked again, twice at most.
          try {
            for (let attempt = 1; server?.running; attempt++) {
              try {
                await server.call('prune', undefined, CALL_MS);
                break;
              } catch (error) {
                if (!server.running) break;
                if (attempt >= 3) throw error;
                this.history.errors.push({
                  who: 'supervisor',
                  message: `prune failed, asked again: ${message(error)}`,
                });
              }
            }
          } finally {
            slot!.proxy.setRefusing(false);
          }
        });
        break;
    }
    this.history.fault(step.fault);
  }

  /**
   * Ends every fault: waits for the background ones (at most `ms`), heals the proxies, brings the
   * server and every client process back and starts every sync client. Throws when something is
   * still not back in time.
   */
  async heal(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    if (!(await bounded(Promise.all([...this.background]), ms))) {
      throw new Error(`faults were still running ${ms} ms after the last step`);
    }
    for (const slot of this.cluster.clients) slot.proxy.heal();
    if (!this.cluster.server?.running) await this.cluster.startServer();
    for (const slot of this.cluster.clients) {
      if (!(await bounded(slot.ready, Math.max(1, deadline - Date.now())))) {
        throw new Error(`client ${slot.index} did not come back`);
      }
      if (!slot.child?.running) await this.cluster.spawnClient(slot);
      await slot.child!.call('start', undefined, Math.max(1000, deadline - Date.now()));
    }
  }
}
