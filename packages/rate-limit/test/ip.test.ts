import t from 'tap'
import { ipBucket } from '../src/ip.js'

t.test('IPv4 is kept as is', async (t) => {
  t.equal(ipBucket('192.0.2.1', 64), '192.0.2.1')
})

t.test('IPv4-mapped IPv6 is the IPv4 client', async (t) => {
  t.equal(ipBucket('::ffff:192.0.2.1', 64), '192.0.2.1')
  t.equal(ipBucket('::FFFF:c000:0201', 64), '192.0.2.1')
})

t.test('IPv6 is grouped by its prefix, whatever its spelling', async (t) => {
  const a = ipBucket('2001:db8:1:2:aaaa::1', 64)
  t.equal(a, '2001:db8:1:2:0:0:0:0/64')
  t.equal(ipBucket('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff', 64), a, 'another address of the same /64')
  t.equal(ipBucket('2001:db8:1:2::1%eth0', 64), a, 'zone id ignored')
  t.not(ipBucket('2001:db8:1:3::1', 64), a, 'another /64')
  t.equal(ipBucket('2001:db8:1:2:aaaa::1', 128), '2001:db8:1:2:aaaa:0:0:1')
  t.equal(ipBucket('2001:db8:1:2:aaaa::1', 56), '2001:db8:1:0:0:0:0:0/56')
  t.equal(ipBucket('2001:db8:1:ff:aaaa::1', 56), '2001:db8:1:0:0:0:0:0/56')
  t.equal(ipBucket('::1', 128), '0:0:0:0:0:0:0:1')
})

t.test('not an address: kept (lower-cased), never thrown on', async (t) => {
  t.equal(ipBucket('zz::zz', 64), 'zz::zz')
  t.equal(ipBucket('1:2:3:4:5:6:7:8:9', 64), '1:2:3:4:5:6:7:8:9')
  t.equal(ipBucket('1::2::3', 64), '1::2::3')
})
