import { TabApp } from './tab-app.js';

// The page the many-tabs test opens as another tab (tab.html): its TabApp, for the test to drive
// through tab-commands.ts.
(window as unknown as { tab: TabApp }).tab = new TabApp();
