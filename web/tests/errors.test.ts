import { describe, expect, it } from 'vitest';
import { ApiError, describe as describeErr, errorMessage } from '../src/lib/errors';

describe('error messages', () => {
  it('shows the API detail with the status', () => {
    expect(errorMessage(403, { detail: 'region R2 is outside your regions' })).toBe('region R2 is outside your regions [HTTP 403]');
  });

  it('adds each field problem of a 422 not already in the detail', () => {
    const body = { detail: 'invalid input', errors: [{ loc: ['body', 'latitude'], msg: 'must be ≤ 90', type: 'x' }] };
    expect(errorMessage(422, body)).toBe('invalid input (latitude: must be ≤ 90) [HTTP 422]');
  });

  it('reads FastAPI default validation lists (the ML service)', () => {
    expect(errorMessage(422, { detail: [{ loc: ['body', 'series'], msg: 'field required' }] })).toBe('series: field required [HTTP 422]');
  });

  it('falls back to a sentence per status for an empty or HTML body, with Retry-After', () => {
    expect(errorMessage(502, '<html>Bad gateway</html>')).toBe('A service behind the API failed [HTTP 502]');
    expect(errorMessage(503, null, '5')).toBe('A service is unavailable: try again shortly — retry in 5 s [HTTP 503]');
    expect(errorMessage(418, null)).toBe('Request failed (HTTP 418) [HTTP 418]');
  });

  it('describes network failures and API errors', () => {
    expect(describeErr(new TypeError('Failed to fetch'))).toBe('The API cannot be reached (Failed to fetch)');
    expect(describeErr(new ApiError(404, 'device x not found [HTTP 404]'))).toBe('device x not found [HTTP 404]');
  });
});
