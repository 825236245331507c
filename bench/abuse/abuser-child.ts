/**
 * The abusive connections of `npm run bench:abuse`, in a process of their own so that their
 * flooding loops take no CPU from the legitimate clients in the bench process: started with the
 * server's URL and the kinds to open (one connection each, user `mallory-<i>`), they run until
 * the parent sends 'stop', then report what they sent and exit.
 *
 * Run by bench/abuse/run.ts: `tsx bench/abuse/abuser-child.ts <url> <kind,kind,...>`.
 */
import { type AbuseKind, Abuser } from './abusers.js';

const [url, kinds] = process.argv.slice(2) as [string, string];
const abusers = kinds.split(',').map((kind, i) => new Abuser(url, kind as AbuseKind, `mallory-${i}`));
process.send?.({ started: abusers.length });
process.on('message', async (message) => {
  if (message !== 'stop') return;
  await Promise.all(abusers.map((a) => a.stop()));
  const sentBytes = abusers.reduce((sum, a) => sum + a.sentBytes, 0);
  const connections = abusers.reduce((sum, a) => sum + a.connections, 0);
  const refused = abusers.reduce((sum, a) => sum + a.refused, 0);
  process.send?.({ sentBytes, connections, refused }, () => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
