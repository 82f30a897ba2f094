// Bearer-token authentication for the HTTP APIs: each token belongs to one principal with one
// role. Tokens are compared by their sha256 in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './http-errors.js';

export type Role = 'admin' | 'labeler';

export interface Principal {
  id: string;
  role: Role;
}

const digest = (token: string) => createHash('sha256').update(token).digest();

export class TokenTable {
  private readonly entries: { hash: Buffer; principal: Principal }[] = [];

  add(token: string, principal: Principal): this {
    this.entries.push({ hash: digest(token), principal });
    return this;
  }

  find(token: string): Principal | null {
    const hash = digest(token);
    let found: Principal | null = null;
    for (const entry of this.entries) if (timingSafeEqual(entry.hash, hash)) found = entry.principal;
    return found;
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** A preHandler that lets through only requests bearing a token of one of `roles`. */
export function requireRole(tokens: TokenTable, ...roles: Role[]) {
  return (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) return done(new HttpError('FW_UNAUTHORIZED', 'send "Authorization: Bearer <token>"'));
    const principal = tokens.find(match[1] as string);
    if (!principal) return done(new HttpError('FW_UNAUTHORIZED', 'unknown token'));
    if (!roles.includes(principal.role)) {
      return done(
        new HttpError('FW_FORBIDDEN', `role ${principal.role} may not do this (needs ${roles.join(' or ')})`),
      );
    }
    request.principal = principal;
    done();
  };
}
