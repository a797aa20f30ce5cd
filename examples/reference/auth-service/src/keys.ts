import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'

export interface PublicJwk {
  kty: 'RSA'
  n: string
  e: string
  kid: string
  alg: 'RS256'
  use: 'sig'
}

export interface SigningKey {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
  jwk: PublicJwk
}

function fromPrivateKey (privateKey: KeyObject): SigningKey {
  if (privateKey.asymmetricKeyType !== 'rsa') throw new Error('the signing key must be an RSA private key (RS256)')
  const publicKey = createPublicKey(privateKey)
  const { n, e } = publicKey.export({ format: 'jwk' })
  if (typeof n !== 'string' || typeof e !== 'string') throw new Error('cannot export the RSA public key as a JWK')
  // RFC 7638 thumbprint: stable for a given key, so every replica sharing a key file publishes the same kid.
  const kid = createHash('sha256').update(JSON.stringify({ e, kty: 'RSA', n })).digest('base64url')
  return { kid, privateKey, publicKey, jwk: { kty: 'RSA', n, e, kid, alg: 'RS256', use: 'sig' } }
}

/** A fresh 2048-bit RSA key: tokens signed by it die with the process. */
export function generateSigningKey (): SigningKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return fromPrivateKey(privateKey)
}

/** Loads a PEM (PKCS#8 or PKCS#1) RSA private key. */
export async function loadSigningKey (file: string): Promise<SigningKey> {
  const pem = await readFile(file, 'utf8')
  return fromPrivateKey(createPrivateKey(pem))
}
