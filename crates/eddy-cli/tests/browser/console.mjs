// Drives eddy's console in Debian's Chromium, as a person would: signs in, uploads a file
// through the page and follows its event to the trace and the handler's log, makes the
// function fail, fixes it and redrives from the page, invokes a function with a sample event,
// and checks that a read-only key cannot redrive, that pages work without JavaScript and from
// the keyboard, and that the browser logged no error. Run by tests/console_browser.rs, which
// starts eddy and says where (EDDY_URL), where the handler's code is (EDDY_HANDLER) and, if
// screenshots are wanted, where they go (EDDY_SHOTS).
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";

const base = process.env.EDDY_URL;
const handler = process.env.EDDY_HANDLER;
const shots = process.env.EDDY_SHOTS;
const console_ = `${base}/_eddy/console`;
const errors = [];

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

function watch(page) {
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`${page.url()}: ${error}`));
}

async function shot(page, name) {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

// Reloads `page` until `text` is on it (what happens in other processes takes a moment).
async function reloadUntil(page, text, what) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if ((await page.content()).includes(text)) return;
    check(Date.now() < deadline, `${what}: "${text}" never appeared on ${page.url()}`);
    await page.waitForTimeout(200);
    await page.reload();
  }
}

async function signIn(page, id, secret) {
  await page.goto(`${console_}/`);
  check(page.url().includes("/sign-in"), "a page without a session leads to signing in");
  await page.fill("input[name=access_key_id]", id);
  await page.fill("input[name=secret_access_key]", secret);
  await page.click("button[type=submit]");
  await page.waitForURL(`${console_}/`);
}

async function upload(page, name, text) {
  await page.goto(`${console_}/buckets/inbox`);
  await page.setInputFiles("form[data-upload] input[type=file]", {
    name,
    mimeType: "text/plain",
    buffer: Buffer.from(text),
  });
  await Promise.all([
    page.waitForEvent("load"),
    page.click("form[data-upload] button[type=submit]"),
  ]);
  await page.waitForSelector(`#objects a:text-is("${name}")`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watch(page);

  // Sign in with the development pair.
  await page.goto(`${console_}/`);
  await shot(page, "sign-in");
  await signIn(page, "eddy-dev", "eddy-dev-secret");

  // Keyboard: the first Tab reaches the skip link, which leads to the content.
  await page.keyboard.press("Tab");
  check(
    await page.evaluate(() => document.activeElement?.classList.contains("skip")),
    "the first Tab focuses the skip link",
  );

  // The live tail: the events page shows an upload made elsewhere without a reload.
  await page.goto(`${console_}/events`);
  await page.waitForSelector("#tail-state");
  const other = await context.newPage();
  watch(other);
  await upload(other, "photo.txt", "hello from chromium");
  await page.waitForSelector('#events a:text-is("photo.txt")', { timeout: 10_000 });
  await other.close();
  await page.reload();
  await shot(page, "events");

  // Its trace: the trigger that matched, the delivery, the invocation and its log.
  await page.click('#events a:text-is("photo.txt")');
  await reloadUntil(page, "class=\"state-done\"", "the upload's delivery");
  const trace = await page.content();
  check(trace.includes("matched"), "the trace shows the trigger matched");
  check(trace.includes("START RequestId"), "the trace shows the handler's log");
  check(trace.includes("handler saw"), "the log shows what the handler wrote");
  await shot(page, "trace");

  // A failure: two uploads the handler refuses become dead letters.
  await upload(page, "bad-1.txt", "one");
  await upload(page, "bad-2.txt", "two");
  await page.goto(`${console_}/dead-letters?function=work`);
  await reloadUntil(page, "RetriesExhausted", "the dead letters");
  await reloadUntil(page, 'name="id"', "the dead letters' checkboxes");
  let rows = await page.locator("#dead-letters tbody tr").count();
  for (let i = 0; rows < 2 && i < 100; i++) {
    await page.waitForTimeout(200);
    await page.reload();
    rows = await page.locator("#dead-letters tbody tr").count();
  }
  check(rows === 2, `two dead letters (found ${rows})`);
  await shot(page, "dead-letters");
  const firstEvent = await page.locator("#dead-letters tbody tr").first().locator("a").getAttribute("href");

  // Fix the function, then redrive one dead letter from the page: it succeeds.
  writeFileSync(handler, 'read -r event\necho "fixed handler saw $event" >&2\necho \'{"handled": true}\'\n');
  await page.locator("#dead-letters tbody tr").first().locator("input[type=checkbox]").check();
  await page.click("button.redrive >> text=Redrive selected");
  await page.waitForSelector("text=1 dead letter sent back to be delivered.");
  await page.goto(`${base}${firstEvent}`);
  await reloadUntil(page, "fixed handler saw", "the redriven delivery's success");
  await reloadUntil(page, "state-done", "the redriven delivery done");
  await shot(page, "redriven");

  // Invoke with a sample event.
  await page.goto(`${console_}/functions/work`);
  await page.click("a:text-is('Custom event')");
  check((await page.inputValue("textarea[name=payload]")).includes('"hello": "eddy"'), "the sample fills the payload");
  await page.click("form.invoke button[type=submit]");
  await page.waitForSelector("#invoke-result");
  check((await page.textContent("#invoke-result")).includes('"handled": true'), "the invocation's result is shown");
  await shot(page, "function");

  for (const [name, path] of [["overview", "/"], ["functions", "/functions"], ["bucket", "/buckets/inbox"], ["tables", "/tables/orders"], ["usage", "/usage"]]) {
    await page.goto(`${console_}${path}`);
    await shot(page, name);
  }

  // On a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const small = await phone.newPage();
  watch(small);
  await signIn(small, "eddy-dev", "eddy-dev-secret");
  await shot(small, "phone");
  await phone.close();

  // A read-only key sees the remaining dead letter but no redrive button, and a redrive
  // posted with its own session and token is refused.
  const readOnly = await browser.newContext();
  const reader = await readOnly.newPage();
  watch(reader);
  await signIn(reader, "reader-key", "reader-secret-0123456789");
  await reader.goto(`${console_}/dead-letters`);
  check(await reader.locator("#dead-letters tbody tr").count() === 1, "the reader sees the dead letter");
  check(await reader.locator("button.redrive").count() === 0, "no redrive button for a read-only key");
  const csrf = await reader.inputValue("input[name=csrf]");
  const refused = await readOnly.request.post(`${console_}/dead-letters/redrive`, {
    form: { csrf, id: "1" },
    maxRedirects: 0,
  });
  check(refused.status() === 403, `the reader's redrive is refused (got ${refused.status()})`);
  await readOnly.close();

  // Without JavaScript, navigation still works: sign in, list events, open a trace.
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const noScript = await plain.newPage();
  watch(noScript);
  await signIn(noScript, "eddy-dev", "eddy-dev-secret");
  await noScript.click("nav a:text-is('Events')");
  await noScript.click('#events a:text-is("photo.txt")');
  check((await noScript.content()).includes("START RequestId"), "a trace opens without JavaScript");
  await plain.close();

  check(errors.length === 0, `the browser logged no errors, but: ${errors.join("; ")}`);
  console.log("console checks passed");
} finally {
  await browser.close();
}
