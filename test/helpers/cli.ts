import { main } from "../../src/cli/main.js";
import { PLAIN } from "../../src/cli/style.js";

/** Runs the ckpt CLI in-process, capturing what it prints, as a user at a terminal without colour would see it. */
export async function ckpt(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(["node", "ckpt", ...args], {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    style: PLAIN,
  });
  return { code, out, err };
}
