// Takes docs/screenshot.png: a few drops with buyers and holds, one of them
// in sizes with two held by the viewer counting down, against a fresh server
// started with --no-demo.
//
//   WEB_DROP_URL=http://127.0.0.1:3000 ADMIN_TOKEN=… HOLD_SECONDS=60 \
//     node e2e/readme-screenshot.mjs
//   pngquant --force --quality 70-90 --output ../../../docs/screenshot.png ../../../docs/screenshot.png

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BASE,
  apiPurchase,
  apiReserve,
  apiSignIn,
  card,
  createDrop,
  launch,
  quantity,
  reserveButton,
  signIn,
} from './lib.mjs';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'docs', 'screenshot.png');

async function buy(dropId, username, choice = {}) {
  const guest = await apiSignIn(username);
  const hold = await apiReserve(dropId, guest, choice);
  await apiPurchase(hold.id, guest);
}

const jordan = await createDrop({
  name: 'Air Jordan 1 Retro High OG',
  price: '199.99',
  holdSeconds: 60,
  maxPerBuyer: 2,
  variants: ['US 8', 'US 9', 'US 10', 'US 11', 'US 12'].map((name, i) => ({ name, totalStock: i === 4 ? 2 : 8 })),
});
const [us8, us9, us10, us11, us12] = jordan.variants;
const panda = await createDrop({ name: 'Dunk Low “Panda”', price: '110.00', totalStock: 6, holdSeconds: 60 });
await createDrop({ name: 'New Balance 550', price: '129.50', totalStock: 25, holdSeconds: 60 });

const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1200, height: 700 } });
const page = await context.newPage();
await page.goto(BASE);
await signIn(page, 'sneakerfan_42');

for (const [u, size] of [['kicks_maria', us9], ['ollie_b', us12], ['jun_park', us10]]) {
  await buy(jordan.id, u, { variantId: size.id });
}
for (const [u, size] of [['h0lder_1', us8], ['h0lder_2', us12], ['h0lder_3', us9], ['h0lder_4', us11]]) {
  await apiReserve(jordan.id, u, { variantId: size.id });
}
for (const u of ['ben_t', 'ana_r', 'lee_k', 'sam_w']) await buy(panda.id, u);
for (const u of ['tay_m', 'ric_o']) await apiReserve(panda.id, u);

await card(page, jordan.name).getByRole('radio', { name: 'US 10', exact: true }).check();
await quantity(page, jordan.name).selectOption('2');
await reserveButton(page, jordan.name).click();
await card(page, jordan.name).getByTestId('countdown').waitFor();
await page.waitForTimeout(7_500); // toasts fade, the countdown has visibly run
await page.screenshot({ path: OUT });
await browser.close();
console.log(`wrote ${OUT}`);
