/**
 * A writer for stdout or stderr that goes quiet when the reader goes away (`ckpt scan models/ | head`): the
 * write fails with EPIPE, which Node reports as an 'error' event that, unhandled, kills the process with a
 * stack trace. Output after that has nowhere to go and is dropped; the command still finishes whatever it
 * writes to disk and exits with its own code. Any other stream error is still raised.
 */
export function pipeSafeWriter(stream: NodeJS.WritableStream): (text: string) => void {
  let closed = false;
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    closed = true;
  });
  return (text) => {
    if (!closed) stream.write(text);
  };
}
