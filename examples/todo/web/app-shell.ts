/**
 * Registers the service worker that keeps the app shell, so a reload works offline
 * (web/public/sw.js). A page it does not control yet (the first visit) asks it to fetch the
 * whole shell now; later visits keep what they load. `data-offline-ready` says when it is done.
 *
 * @example
 *   keepAppShell().catch((error) => console.warn(`not kept for offline use: ${error.message}`));
 */
export async function keepAppShell(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  const controlled = navigator.serviceWorker.controller !== null;
  await navigator.serviceWorker.register('/sw.js');
  if (!controlled) {
    const worker = (await navigator.serviceWorker.ready).active!;
    const channel = new MessageChannel();
    const reply = new Promise<{ ok: boolean; error?: string }>((resolve) => {
      channel.port1.onmessage = (event) => resolve(event.data);
    });
    worker.postMessage({ type: 'precache', url: location.href }, [channel.port2]);
    const { ok, error } = await reply;
    if (!ok) throw new Error(error);
  }
  document.body.dataset.offlineReady = 'true';
}
