import { describe, expect, it } from 'vitest';
import { classifyAddress, refusedHost, refusedWebhookUrl } from '../../core/tenancy/webhook-destination.js';

describe('webhook destinations', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['0:0:0:0:0:ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['::ffff:8.8.8.8', 'public'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each(['example.com', '1.2.3', '1.2.3.256', '::1::', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', ''])('%s is no address', (text) => {
    expect(classifyAddress(text)).toBeUndefined();
  });

  it('refuses local host names, allows other names (checked again once resolved)', () => {
    expect(refusedHost('localhost')).toBeDefined();
    expect(refusedHost('LOCALHOST.')).toBeDefined();
    expect(refusedHost('api.localhost')).toBeDefined();
    expect(refusedHost('hooks.example.com')).toBeUndefined();
  });

  it.each([
    'http://127.0.0.1:5432/',
    'http://[::1]:7233/',
    'http://localhost:8080/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://2130706433/', // the URL parser reads this as 127.0.0.1
    'http://0x7f.1/',
    'http://[::ffff:127.0.0.1]/',
    'https://10.0.0.5/hook',
    'http://0.0.0.0:3000/',
  ])('refuses %s', (url) => {
    expect(refusedWebhookUrl(url)).toMatch(/may not point at/);
  });

  it.each(['https://hooks.example.com/tenure', 'http://93.184.216.34/hook', 'https://[2606:4700::1111]/'])('allows %s', (url) => {
    expect(refusedWebhookUrl(url)).toBeUndefined();
  });
});
