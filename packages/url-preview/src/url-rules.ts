/**
 * Operator URL deny rules, in the spirit of Synapse's
 * `url_preview_url_blacklist`: each rule names URL components, and a URL is
 * refused when every component a rule names matches.
 */

/**
 * One deny rule. Each value is a glob (`*` any run of characters, `?` one
 * character), or a regular expression when it starts with `^`. Matching
 * ignores case. A rule with no component is a configuration error.
 *
 * @example
 * { host: '*.internal.example' }          // every subdomain
 * { host: 'example.com', path: '/admin*' } // one site's admin pages
 * { url: '^https?://[^/]*\\.onion(/|$)' }   // a regular expression on the whole URL
 */
export interface UrlDenyRule {
  /** `http` or `https`. */
  readonly scheme?: string;
  /** The host name (IPv6 literals in brackets), lower-cased. */
  readonly host?: string;
  /** The port, explicit or the scheme's default. */
  readonly port?: string;
  /** The path, starting with `/`. */
  readonly path?: string;
  /** The whole URL without fragment. */
  readonly url?: string;
}

/** Whether a URL is refused. */
export type UrlDenyMatcher = (url: URL) => boolean;

const COMPONENTS = ['scheme', 'host', 'port', 'path', 'url'] as const;
type Component = (typeof COMPONENTS)[number];

function patternOf(text: string): RegExp {
  if (text.startsWith('^')) return new RegExp(text, 'i');
  const body = text
    .split('')
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

function componentOf(url: URL, component: Component): string {
  switch (component) {
    case 'scheme':
      return url.protocol.slice(0, -1);
    case 'host':
      return url.hostname;
    case 'port':
      return url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
    case 'path':
      return url.pathname;
    case 'url': {
      const copy = new URL(url.href);
      copy.hash = '';
      return copy.href;
    }
  }
}

/**
 * Compiles deny rules, adding a message to `problems` for each malformed one
 * (the previewer turns them into a `PreviewConfigError`).
 */
export function compileUrlDenyRules(rules: readonly UrlDenyRule[], problems: string[] = []): UrlDenyMatcher {
  const compiled: { component: Component; pattern: RegExp }[][] = [];
  rules.forEach((rule, index) => {
    const parts: { component: Component; pattern: RegExp }[] = [];
    for (const key of Object.keys(rule ?? {})) {
      if (!(COMPONENTS as readonly string[]).includes(key)) problems.push(`urlDenyList[${index}]: unknown component ${JSON.stringify(key)}`);
    }
    for (const component of COMPONENTS) {
      const value = rule?.[component];
      if (value === undefined) continue;
      if (typeof value !== 'string' || value === '') {
        problems.push(`urlDenyList[${index}].${component} must be a non-empty string`);
        continue;
      }
      try {
        parts.push({ component, pattern: patternOf(value) });
      } catch (error) {
        problems.push(`urlDenyList[${index}].${component}: ${(error as Error).message}`);
      }
    }
    if (parts.length === 0) problems.push(`urlDenyList[${index}] names no URL component`);
    else compiled.push(parts);
  });
  return (url: URL): boolean =>
    compiled.some((parts) => parts.every(({ component, pattern }) => pattern.test(componentOf(url, component))));
}
