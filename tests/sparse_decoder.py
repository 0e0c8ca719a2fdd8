"""An independent decoder of the sparse codec's streams, written from docs/SPARSE.md alone.

decode(stream) -> (info dict, wedge as a NumPy uint16 array of shape (192, 249, 16)).
Raises ValueError on any damage the document lists. Pure Python (+ NumPy for the result):
a few seconds a wedge. `python3 sparse_decoder.py FILE.bcsp OUT.npy` decodes one stream.
"""
import bisect
import struct
import sys

import numpy as np

NA, NZ, NL = 192, 249, 16
VOXELS = NA * NZ * NL

# Section 3: the constant tables and lg.
RATE = [65536 // (n + 2) for n in range(256)]
LOGT = [((1024 + i) ** 1024).bit_length() - 1 - 10240 for i in range(1024)]


def lg(x):
    e = x.bit_length() - 1
    m = x << (10 - e) if e <= 10 else x >> (e - 10)
    return 1024 * e + LOGT[m - 1024]


T = [0] * 256
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    T[_i] = _c


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def tdiv(a, b):
    """Division truncating toward zero (section 2)."""
    return -(-a // b) if a < 0 else a // b


# Section 4: the quantiser.
def levels(M, ped):
    """The levels' values v[1..L], L, lgu (log above the pedestal), lgv, sat, floor and
    level_at_log for multiplier M and pedestal ped."""
    v, his, lo = [0], [], 1
    while lo <= 65535:
        r = min(((lo + 1) * M >> 32) - 1, 65535)
        hi = min(((r + 1) * M >> 32) - 1, 65535)
        v.append(r)
        his.append(hi)
        lo = hi + 1
    L = len(v) - 1
    lgv = [0] + [lg(x + 1) for x in v[1:]]
    lgu = [0] + [lg(max(x - ped, 0) + 2) for x in v[1:]]
    level_of = lambda a: bisect.bisect_left(his, a) + 1  # noqa: E731 (the bin whose hi >= a)
    sat, floor = level_of(1023), level_of(64)
    at_log, q = [0] * 17409, 1
    for t in range(17409):
        while q < L and lgu[q + 1] <= t:
            q += 1
        at_log[t] = q
    return v, L, lgu, lgv, sat, floor, at_log


# Section 5: the range decoder and its bit models.
class Section:
    def __init__(self, data, limit, nmodels):
        self.data, self.pos, self.range = data, 0, 0xFFFFFFFF
        self.limit = limit
        self.p0 = [32768] * nmodels
        self.n = [0] * nmodels
        if self.byte() != 0:
            raise ValueError("a section's first byte is not 0")
        self.code = 0
        for _ in range(4):
            self.code = (self.code << 8) | self.byte()

    def byte(self):
        b = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return b

    def bit(self, m):
        p0 = self.p0[m]
        bound = (self.range * p0) >> 16
        n = self.n[m]
        if self.code < bound:
            self.range = bound
            self.p0[m] = p0 + (((65536 - p0) * RATE[n]) >> 16)
            b = 0
        else:
            self.code -= bound
            self.range -= bound
            self.p0[m] = p0 - ((p0 * RATE[n]) >> 16)
            b = 1
        if n < self.limit:
            self.n[m] = n + 1
        while self.range < 1 << 24:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = ((self.code << 8) | self.byte()) & 0xFFFFFFFF
        return b

    def direct(self):
        self.range >>= 1
        b = 0
        if self.code >= self.range:
            self.code -= self.range
            b = 1
        while self.range < 1 << 24:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = ((self.code << 8) | self.byte()) & 0xFFFFFFFF
        return b

    def end(self, what):
        if self.pos != len(self.data):
            raise ValueError(f"{what} section read {self.pos} bytes of {len(self.data)}")


# Section 6: the grid, with borders so that every neighbour of a voxel exists.
PZ, PA = 256, NA + 3
LS = PA * PZ


def cell(l, a, z):
    return ((l + 2) * PA + (a + 2)) * PZ + (z + 2)


NEXT = [(7, 1), (7, 2), (7, 3), (7, 4), (7, 5), (7, 6), (7, 6), (8, 0), (9, 0), (10, 0),
        (11, 0), (11, 0)]
SC = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10]


def occupancy(data, occ):
    """Section 7: fills occ, returns the pulses as (first cell, length)."""
    s_ = Section(data, 60, 22528 + 8 + 72)
    QF, QO = 22528, 22528 + 8
    pulses = []
    for l in range(NL):
        for a in range(NA):
            row = cell(l, a, 0)
            p1, p2, u = row - PZ, row - 2 * PZ, row - LS
            s, run, z = 11, 0, 0
            while z < NZ:
                w1 = (occ[p1 + z - 2] | occ[p1 + z - 1] << 1 | occ[p1 + z] << 2 |
                      occ[p1 + z + 1] << 3 | occ[p1 + z + 2] << 4 | occ[p1 + z + 3] << 5)
                w2 = occ[p2 + z - 1] | occ[p2 + z] << 1 | occ[p2 + z + 1] << 2
                lay = occ[u + z] | (occ[u + z - PZ] | occ[u + z + PZ]) << 1
                if s == 11 and not (w1 | w2 | lay):
                    n = 1
                    while z + n < NZ and not (occ[p1 + z + n + 3] | occ[p2 + z + n + 1] |
                                              occ[u + z + n] | occ[u + z + n - PZ] |
                                              occ[u + z + n + PZ]):
                        n += 1
                    if not s_.bit(QF + n.bit_length() - 1):
                        z += n
                        continue
                    nb, o = (n - 1).bit_length(), 0
                    for t in range(nb - 1, -1, -1):
                        o |= s_.bit(QO + nb * 8 + t) << t
                    if o >= n:
                        raise ValueError("quiet offset past its stretch")
                    z += o
                    occ[row + z] = 1
                    s, run = 0, 1
                    z += 1
                    continue
                b = s_.bit(((SC[s] * 64 + w1) * 8 + w2) * 4 + lay)
                occ[row + z] = b
                s = NEXT[s][b]
                if b:
                    run += 1
                elif run:
                    pulses.append((row + z - run, run))
                    run = 0
                z += 1
            if run:
                pulses.append((row + NZ - run, run))
    s_.end("occupancy")
    return pulses


def sg(x):
    return 1 if x > 0 else 2 if x < 0 else 0


def values(data, pulses, M, ped):
    """Section 8: returns {cell: level} and the level values."""
    v, L, lgu, lgv, sat, floor, at_log = levels(M, ped)
    s_ = Section(data, 255, 6 * 4 * 4 * 16 * 69 + 16)
    SAT = 6 * 4 * 4 * 16 * 69
    bias_sum, bias_n = [0] * 3456, [0] * 3456
    mag_abs, mag_n = [0] * 384, [0] * 384
    G = (NL + 2) * LS
    LG, ER = [0] * G, [0] * G
    out = {}
    for start, length in pulses:
        for i in range(length):
            x_ = start + i
            rem = length - 1 - i
            W, WW, N, NW, NE = LG[x_ - 1], LG[x_ - 2], LG[x_ - PZ], LG[x_ - 1 - PZ], LG[x_ + 1 - PZ]
            U = LG[x_ - LS]
            eW, eN, eNE, eNW = ER[x_ - 1], ER[x_ - PZ], ER[x_ + 1 - PZ], ER[x_ - 1 - PZ]
            if W and N and NW:
                c, p, s = 0, W + N - NW, (N >= NW) + 2 * (W >= WW)
            elif W and WW:
                d = W - WW
                c, p, s = 1, W, 0 if d < -256 else 1 if d < 0 else 2 if d < 256 else 3
            elif W:
                c, p, s = 2, W, 0
            elif N:
                c, p, s = 3, N, (NW > 0) + 2 * (NE > 0)
            elif U:
                c, p, s = 4, U, 0
            else:
                c, p, s = 5, lgu[floor], 0
            p = min(max(p, 0), 17408)
            es = 3 * sg(eW) + sg(eN)
            bctx = (((c * 4 + min(i, 3)) * 4 + min(rem, 3)) * 4 + s) * 9 + es
            corr = tdiv(bias_sum[bctx], bias_n[bctx]) if bias_n[bctx] else 0
            qp = min(max(at_log[p] + corr, 1), L)
            ab = min(max(tdiv(lgv[qp] - 6144, 512), 0), 7)
            act = abs(eW) + abs(eN) + (abs(eNE) + abs(eNW)) // 2
            mctx = (c * 8 + ab) * 8 + min((act >> 4).bit_length(), 7)
            k = 0
            while k < 15 and mag_n[mctx] * (1 << k) < mag_abs[mctx]:
                k += 1
            x = 0 if rem == 0 else 1 if rem == 1 else 2 if i == 0 else 3
            room = qp - floor
            rb = 0 if room < (1 << k) // 2 else 1 if room < (1 << k) else 2 if room < (2 << k) else 3
            R = ((((c * 4 + x) * 4 + rb) * 16) + k) * 69
            ls = lgu[sat]
            nsat = (W == ls) + (N == ls) + (NW == ls) + (NE == ls) + (U == ls)
            q = None
            if (ab >= 4 or nsat) and s_.bit(SAT + min(nsat, 3) * 4 + ab // 2):
                q = sat
            if q is None:
                if k == 0 or s_.bit(R):
                    C = k
                    while C < 17 and s_.bit(R + 1 + C - k):
                        C += 1
                else:
                    C = k - 1
                    while C > 0 and s_.bit(R + 18 + k - 1 - C):
                        C -= 1
                r = 0
                if C:
                    neg = s_.bit(R + 34)
                    mag = 1
                    for t in range(C - 1):
                        b = s_.bit(R + 35 + 2 * (C - 1) + t) if t < 2 else s_.direct()
                        mag = (mag << 1) | b
                    r = -mag if neg else mag
                q = qp + r
                if not 1 <= q <= L:
                    raise ValueError("a level outside 1..L")
                mag_abs[mctx] += abs(r)
                mag_n[mctx] += 1
                if mag_n[mctx] == 64:
                    mag_abs[mctx] //= 2
                    mag_n[mctx] = 32
                bias_sum[bctx] += r
                bias_n[bctx] += 1
                if bias_n[bctx] == 64:
                    bias_sum[bctx] = tdiv(bias_sum[bctx], 2)
                    bias_n[bctx] = 32
            LG[x_] = lgu[q]
            ER[x_] = lgu[q] - lgu[qp]
            out[x_] = q
    s_.end("values")
    return out, v


def decode(stream):
    """Section 1 and 9: checks the stream and decodes it."""
    b = bytes(stream)
    if len(b) < 40:
        raise ValueError("truncated")
    if b[:4] != b"BCSP":
        raise ValueError("bad magic")
    if b[4] != 1:
        raise ValueError(f"unsupported version {b[4]}")
    method, r1, na, nz, nl, ped, M, hits, O, S = struct.unpack_from("<BHHHHHQIII", b, 5)
    if method not in (0, 1) or r1 or (na, nz, nl) != (NA, NZ, NL):
        raise ValueError("bad header")
    if not (1 << 32) <= M <= (1 << 40) or hits > VOXELS:
        raise ValueError("bad header")
    if method == 0:
        if M != 1 << 32 or O or S or ped:
            raise ValueError("bad stored header")
        total = 36 + 2 * VOXELS + 4
    else:
        if not (5 <= O <= 2 * VOXELS and 5 <= S <= 2 * VOXELS):
            raise ValueError("section lengths out of range")
        total = 36 + O + S + 4
    if len(b) != total:
        raise ValueError(f"{len(b)} bytes, the header says {total}")
    if struct.unpack_from("<I", b, total - 4)[0] != crc32c(b[:total - 4]):
        raise ValueError("CRC mismatch")
    info = dict(method=("stored", "coded")[method], M=M, pedestal=ped, hits=hits,
                occupancy_bytes=O, value_bytes=S)
    if method == 0:
        w = np.frombuffer(b, "<u2", VOXELS, 36).astype(np.uint16)
        if int(np.count_nonzero(w)) != hits:
            raise ValueError("hit count")
        return info, w.reshape(NA, NZ, NL)
    occ = bytearray((NL + 2) * LS)
    pulses = occupancy(b[36:36 + O], occ)
    if sum(n for _, n in pulses) != hits:
        raise ValueError("hit count")
    levels_of, v = values(b[36 + O:36 + O + S], pulses, M, ped)
    w = np.zeros((NA, NZ, NL), np.uint16)
    for c, q in levels_of.items():
        l, rest = divmod(c, LS)
        a, z = divmod(rest, PZ)
        w[a - 2, z - 2, l - 2] = v[q]
    return info, w


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        information, wedge = decode(f.read())
    print(information)
    if len(sys.argv) > 2:
        np.save(sys.argv[2], wedge)
