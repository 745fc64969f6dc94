/**
 * Region, credentials and endpoint for s3:// as the AWS CLI and SDKs find them: the standard environment
 * variables first, then the profile (`AWS_PROFILE`, else `default`) in `~/.aws/credentials` and
 * `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`). Static keys only: SSO, roles and
 * `credential_process` profiles are not followed (export their keys, e.g. `aws configure export-credentials`).
 * Portable: the files are read through `read` (Node passes `readFileSync`; a page has none).
 */

export type Env = Readonly<Record<string, string | undefined>>;

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface AwsSettings {
  readonly region: string;
  /** Absent: requests go unsigned, as for a public bucket. */
  readonly credentials: AwsCredentials | undefined;
  /** `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` / the profile's `endpoint_url`: an S3-compatible store (path-style). */
  readonly endpoint: string | undefined;
}

type Sections = Map<string, Map<string, string>>;

/** An INI file's sections (`[name]` or `[profile name]`, as ~/.aws/config writes them); empty when absent. */
function parseIni(text: string | undefined): Sections {
  const sections: Sections = new Map();
  if (text === undefined) return sections;
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1] as string, current);
      continue;
    }
    const pair = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (pair && current) current.set((pair[1] as string).toLowerCase(), pair[2] as string);
  }
  return sections;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

export function awsSettings(
  env: Env,
  read: (path: string) => string | undefined = () => undefined,
  home = "~",
): AwsSettings {
  const profileName = nonEmpty(env.AWS_PROFILE) ?? nonEmpty(env.AWS_DEFAULT_PROFILE) ?? "default";
  const credentialsFile = parseIni(
    read(nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE) ?? `${home}/.aws/credentials`),
  );
  const configFile = parseIni(read(nonEmpty(env.AWS_CONFIG_FILE) ?? `${home}/.aws/config`));
  const fromCredentials = credentialsFile.get(profileName);
  const fromConfig = configFile.get(profileName);
  const setting = (key: string) => nonEmpty(fromCredentials?.get(key)) ?? nonEmpty(fromConfig?.get(key));

  const envKey = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const envSecret = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  let credentials: AwsCredentials | undefined;
  if (envKey && envSecret) {
    const token = nonEmpty(env.AWS_SESSION_TOKEN);
    credentials = {
      accessKeyId: envKey,
      secretAccessKey: envSecret,
      ...(token ? { sessionToken: token } : {}),
    };
  } else {
    const key = setting("aws_access_key_id");
    const secret = setting("aws_secret_access_key");
    const token = setting("aws_session_token");
    if (key && secret)
      credentials = { accessKeyId: key, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
  }
  return {
    region: nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? setting("region") ?? "us-east-1",
    credentials,
    endpoint: nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL) ?? setting("endpoint_url"),
  };
}
