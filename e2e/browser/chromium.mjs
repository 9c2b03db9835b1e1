// The one way the e2e drivers start the system's Chromium (never a
// downloaded one), with the flags that work here as root, headless, on a
// closed network (shared/TESTING.md). camera: a fake camera and microphone
// that need no permission prompt, and loopback ICE candidates; player:
// media plays without a user gesture. spki: base64 SHA-256 hashes of
// certificate public keys to trust (a test CA's server certificate;
// Chromium honours the flag because playwright gives it a --user-data-dir).
import { chromium } from 'playwright-core';

const base = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const cameraFlags = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection'];

export function launchChromium(executablePath, { camera = false, player = false, spki = '' } = {}) {
  const args = [...base];
  if (spki) args.push(`--ignore-certificate-errors-spki-list=${spki}`);
  if (camera) args.push(...cameraFlags);
  if (player) args.push('--autoplay-policy=no-user-gesture-required');
  return chromium.launch({ executablePath, args });
}
