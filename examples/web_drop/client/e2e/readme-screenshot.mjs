// Takes docs/screenshot.png: a few drops with buyers, holds and one held
// unit counting down, against a fresh server started with --no-demo.
//
//   WEB_DROP_URL=http://127.0.0.1:3000 ADMIN_TOKEN=… HOLD_SECONDS=60 \
//     node e2e/readme-screenshot.mjs
//   pngquant --force --quality 70-90 --output ../../../docs/screenshot.png ../../../docs/screenshot.png

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE, apiPurchase, apiReserve, apiSignIn, card, createDrop, launch, reserveButton, signIn } from './lib.mjs';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'docs', 'screenshot.png');

async function buy(dropId, username) {
  const guest = await apiSignIn(username);
  const hold = await apiReserve(dropId, guest);
  await apiPurchase(hold.id, guest);
}

const jordan = await createDrop({ name: 'Air Jordan 1 Retro High OG', price: '199.99', totalStock: 40, holdSeconds: 60 });
const panda = await createDrop({ name: 'Dunk Low “Panda”', price: '110.00', totalStock: 6, holdSeconds: 60 });
await createDrop({ name: 'New Balance 550', price: '129.50', totalStock: 25, holdSeconds: 60 });

const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1200, height: 700 } });
const page = await context.newPage();
await page.goto(BASE);
await signIn(page, 'sneakerfan_42');

for (const u of ['kicks_maria', 'ollie_b', 'jun_park']) await buy(jordan.id, u);
for (const u of ['h0lder_1', 'h0lder_2', 'h0lder_3', 'h0lder_4', 'h0lder_5']) await apiReserve(jordan.id, u);
for (const u of ['ben_t', 'ana_r', 'lee_k', 'sam_w']) await buy(panda.id, u);
for (const u of ['tay_m', 'ric_o']) await apiReserve(panda.id, u);

await reserveButton(page, jordan.name).click();
await card(page, jordan.name).getByTestId('countdown').waitFor();
await page.waitForTimeout(7_500); // toasts fade, the countdown has visibly run
await page.screenshot({ path: OUT });
await browser.close();
console.log(`wrote ${OUT}`);
