// The heap rig on MicroPython's 32-bit WebAssembly port (objects the size of a Pico's).
//   node tests/heap/run32.mjs HEAP_BYTES LIBDIR
// LIBDIR holds the firmware, the sim board and the rig compiled to .mpy (tests/heap/rig.py).
// The port's heap starts at HEAP_BYTES but grows instead of raising MemoryError, and it collects
// garbage only between calls from JavaScript: the rig runs in slices (rig_asyncio.pump) and
// samples the live heap after each collection (tests/heap/README.md).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const [heapArg, lib, entryArg] = process.argv.slice(2);
const entry = entryArg || "drive";  // a module with `async def run(root)`
if (!heapArg || !lib) {
  console.error("usage: node run32.mjs HEAP_BYTES LIBDIR");
  process.exit(2);
}
// The port's asyncio yields through setTimeout, which Node clamps to 1 ms: a lockstep day of
// zero-length yields would take minutes. A zero delay goes through setImmediate instead.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
globalThis.setTimeout = (fn, ms, ...a) => (!ms || ms <= 0) ? setImmediate(fn, ...a) : realSetTimeout(fn, ms, ...a);
globalThis.clearTimeout = (h) => (h && h.constructor && h.constructor.name === "Immediate")
  ? clearImmediate(h) : realClearTimeout(h);

// The package is pinned in the repository's package.json and installed by `make` (npm ci).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(root, "package.json"));
const pkg = require.resolve("@micropython/micropython-webassembly-pyscript/micropython.mjs");
const { loadMicroPython } = await import(pkg);
const mp = await loadMicroPython({
  heapsize: parseInt(heapArg, 10), linebuffer: false,
  stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s),
});

function copy(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name);
    const d = dst + "/" + ent.name;
    if (ent.isDirectory()) copy(s, d);
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
copy(lib, "/lib");
mp.FS.mkdir("/data");
try {
  // The port's filesystem raises Emscripten's errno numbers while its errno module holds
  // MicroPython's (a Pico's littlefs raises those): the firmware reads the names, so the rig
  // hands it an errno with the numbers this filesystem really uses.
  await mp.runPythonAsync([
    "import sys",
    "sys.path.insert(0, '/lib')",
    "class _Errno:",
    "    ENOENT = 44; EIO = 29; EEXIST = 20; ENOSPC = 51; EINVAL = 28",
    "sys.modules['errno'] = _Errno",
    "import rig_asyncio",
    "sys.modules['asyncio'] = rig_asyncio",
    `import ${entry}`,
    `rig_asyncio.start(${entry}.run('/data'))`,
  ].join("\n") + "\n");
  // Every pump() is a call from JavaScript: the port collects garbage on the way in.
  const rig = mp.pyimport("rig_asyncio");
  while (!rig.pump(200)) { /* slices */ }
  rig.result();
} catch (e) {
  console.error("micropython failed: " + (e && e.message ? e.message : e));
  process.exit(1);
}
