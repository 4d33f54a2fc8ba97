import { readFileSync } from 'node:fs';

/**
 * The spec's signing test vectors (https://spec.matrix.org/v1.12/appendices/#cryptographic-test-vectors) and
 * vectors derived from its test key (X-Matrix headers, a key server response), as data.
 */
export interface SigningVectors {
  seed_b64: string;
  server_name: string;
  key_id: string;
  public_key_b64: string;
  spec_json_signing: { input: Record<string, unknown>; sig: string }[];
  derived_x_matrix: { canonical: string; sig: string }[];
  derived_key_response: Record<string, unknown> & { signatures: Record<string, Record<string, string>> };
}

export const vectors: SigningVectors = JSON.parse(
  readFileSync(new URL('./fixtures/signing-vectors.json', import.meta.url), 'utf8'),
) as SigningVectors;
