import { describe, expect, it } from 'vitest';
import { agentClassOf, isLinkShaped, landingLocation, portalLang } from '../../../src/rules/referral-landing.js';

describe('landingLocation', () => {
  it.each([
    ['https://shop.example.ru', 'https://shop.example.ru/?ref=ABC234&utm_source=sarafan&utm_medium=referral'],
    ['https://shop.example.ru/p?a=1&b=2#f', 'https://shop.example.ru/p?a=1&b=2&ref=ABC234&utm_source=sarafan&utm_medium=referral#f'],
    ['http://shop.example.ru/p?ref=OLD&utm_medium=email&ref=OLD2', 'http://shop.example.ru/p?ref=ABC234&utm_medium=referral&utm_source=sarafan'],
    ['https://shop.example.ru/p?q=a%20b&utm_campaign=spring', 'https://shop.example.ru/p?q=a+b&utm_campaign=spring&ref=ABC234&utm_source=sarafan&utm_medium=referral'],
  ])('%s → %s', (landing, expected) => {
    expect(landingLocation(landing, 'ABC234')).toBe(expected);
  });

  it.each([null, 'javascript:alert(1)', 'ftp://shop.example.ru/', '//evil.com', 'not a url', 'https://user:pass@shop.example.ru/'])('refuses %s', (landing) => {
    expect(landingLocation(landing, 'ABC234')).toBeNull();
  });
});

describe('isLinkShaped', () => {
  it.each([
    ['0123456789abcdef0123', 'ABC234', true],
    ['0123456789abcdef0123', 'shop7kx3', true],
    ['0123456789ABCDEF0123', 'ABC234', false],
    ['0123456789abcdef012', 'ABC234', false],
    ['0123456789abcdef0123', '//evil.com', false],
    ['0123456789abcdef0123', 'ABC\r\nX', false],
    ['0123456789abcdef0123', '', false],
  ])('%s / %j → %s', (id, code, ok) => {
    expect(isLinkShaped(id, code)).toBe(ok);
  });
});

describe('agentClassOf', () => {
  it.each([
    [undefined, 'other'],
    ['', 'other'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36', 'desktop'],
    ['Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36', 'mobile'],
    ['TelegramBot (like TwitterBot)', 'bot'],
    ['WhatsApp/2.23.20.0', 'bot'],
    ['Mozilla/5.0 (compatible; Googlebot/2.1)', 'bot'],
    ['curl/8.0', 'bot'],
    ['SomeApp/1.0', 'other'],
  ])('%j → %s', (ua, cls) => {
    expect(agentClassOf(ua)).toBe(cls);
  });
});

describe('portalLang', () => {
  it.each([
    ['acme.bitrix24.ru', 'ru'],
    ['acme.bitrix24.by', 'ru'],
    ['acme.bitrix24.kz', 'ru'],
    ['crm.example.ru:8443', 'ru'],
    ['acme.bitrix24.com', 'en'],
    ['acme.bitrix24.de', 'en'],
    ['localhost:3001', 'en'],
  ])('%s → %s', (domain, lang) => {
    expect(portalLang(domain)).toBe(lang);
  });
});
