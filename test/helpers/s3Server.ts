import { forkServer, type Served } from "./rangeServer.js";

/** s3rver behind a SigV4-verifying front (`s3ServerProcess.mjs`), in a child process, with what the front counted. */
export interface S3Server {
  /** The front's URL: what `AWS_ENDPOINT_URL` is set to. */
  readonly endpoint: string;
  served(): Promise<Served>;
  reset(): Promise<Served>;
  close(): Promise<void>;
}

/** Serves every file below `dir` as an object of `bucket` (key: its path below `dir`). */
export async function startS3Server(
  dir: string,
  bucket: string,
  accessKey: string,
  secret: string,
): Promise<S3Server> {
  const { port, ask, close } = await forkServer("s3ServerProcess.mjs", [dir, bucket, accessKey, secret]);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    served: () => ask({ kind: "stats" }),
    reset: () => ask({ kind: "reset" }),
    close,
  };
}
