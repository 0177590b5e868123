import { describe, expect, it } from 'vitest';
import { backoffDelay, backoffSchedule } from '../src/lib/backoff';
import { embedProblem, readClaims } from '../src/lib/embed';
import { SseParser } from '../src/lib/sse';

describe('reconnect backoff', () => {
  it('doubles from 1 s up to the 30 s cap', () => {
    expect(backoffSchedule(7)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });
  it('jitters down by at most the jitter share, never up', () => {
    expect(backoffDelay(3, 1000, 30000, 0.2, () => 1)).toBe(6400);
    expect(backoffDelay(3, 1000, 30000, 0.2, () => 0)).toBe(8000);
    expect(backoffDelay(1000, 1000, 30000, 0.2, () => 0)).toBe(30000);
  });
});

describe('server-sent events parser', () => {
  it('parses events split across chunks, CRLF, comments and multi-line data', () => {
    const p = new SseParser();
    expect(p.push('event: status\ndata: {"serving"')).toEqual([]);
    expect(p.push(': "up"}\n\n: keep-alive\n\nevent: value\r\ndata: a\r\ndata: b\r\n\r\ndata: x\n\n'))
      .toEqual([{ event: 'status', data: '{"serving": "up"}' }, { event: 'value', data: 'a\nb' }, { event: 'message', data: 'x' }]);
  });
});

function token(claims: object): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return `${b64({ alg: 'HS256' })}.${b64(claims)}.sig`;
}

describe('embed tokens', () => {
  const now = 1_800_000_000;
  const good = { view: 'load_curve', params: { entity_type: 'feeder', entity_id: 'FDR-0001' }, regions: ['R1'], exp: now + 60 };
  it('reads the claims of a token (base64url)', () => {
    expect(readClaims(token(good))).toEqual(good);
    expect(readClaims('garbage')).toBeNull();
  });
  it('shows only the view the token names, unexpired, with its parameters', () => {
    expect(embedProblem('load_curve', readClaims(token(good)), now)).toBeNull();
    expect(embedProblem('overview', readClaims(token(good)), now)).toMatch(/for the view "load_curve"/);
    expect(embedProblem('load_curve', readClaims(token({ ...good, exp: now - 1 })), now)).toMatch(/expired/);
    expect(embedProblem('users', readClaims(token({ ...good, view: 'users' })), now)).toMatch(/Unknown/);
    expect(embedProblem('load_curve', readClaims(token({ ...good, params: {} })), now)).toMatch(/no entity/);
    expect(embedProblem('load_curve', null, now)).toMatch(/no valid token/);
  });
});
