package zones

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	recT0 = time.Date(2026, 11, 11, 10, 0, 0, 123456789, time.UTC)
	recT1 = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Second) // before the epoch
)

func sampleDevices() []*deviceState {
	return []*deviceState{
		{},
		{Boots: []*bootState{
			{Boot: "a", Seq: 9, Seen: 0xff, Totals: map[string][2]uint64{"1": {5, 2}, "2": {1 << 62, 0}, "z": {0, 7}}, LastTS: recT0, LastAt: recT1},
			{Boot: "", Seq: 0},
		}, Retired: []string{"old", ""}, LastSeen: recT0, Online: true, Reports: 1 << 40},
		{Vendor: &vendorState{Seq: 4, SeqSet: true, LastSemantics: "increment", LastTS: recT0}, LastSeen: recT0},
	}
}

func sampleEntries() []*LogEntry {
	ts := recT1
	return []*LogEntry{
		{At: recT0, Kind: EntryCrossing, Device: "dc-01", Boot: "b", DSeq: 3, TS: &ts, Doors: []DoorDelta{{Door: "main", In: 4}, {Door: "up", Out: 1 << 63}}},
		{At: recT0, Kind: EntryAnchor, Device: "cam", Zone: "hall", Value: -5, Before: 1 << 62},
		{At: recT0, Kind: EntryCorrection, Zone: "hall", Value: 3, Before: 8, By: "guard-7", Reason: "head count ✓"},
		{},
	}
}

// jsonOf compares records by their format-1 form, with times in UTC (a decoded time is local).
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m any
	_ = json.Unmarshal(b, &m)
	var fix func(any) any
	fix = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k, v := range x {
				x[k] = fix(v)
			}
		case []any:
			for i, v := range x {
				x[i] = fix(v)
			}
		case string:
			if tm, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return tm.UTC().Format(time.RFC3339Nano)
			}
		}
		return x
	}
	b, _ = json.Marshal(fix(m))
	return string(b)
}

// Every record survives encoding and decoding with every field, and reads the same as
// its format-1 JSON.
func TestRecordsRoundTrip(t *testing.T) {
	for i, s := range sampleDevices() {
		b, err := appendDevice([]byte("key"), s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("key")) || b[3] != recordV2 {
			t.Fatalf("device %d: not appended after the key with its tag: %x", i, b)
		}
		var got deviceState
		if err := decodeRecord(b[3:], &got); err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
		if w, g := jsonOf(t, s), jsonOf(t, &got); w != g {
			t.Errorf("device %d:\n got %s\nwant %s", i, g, w)
		}
		// The same record from its format-1 JSON.
		j, _ := json.Marshal(s)
		var fromJSON deviceState
		if err := decodeRecord(j, &fromJSON); err != nil {
			t.Fatalf("device %d from JSON: %v", i, err)
		}
		if again, _ := appendDevice(nil, &fromJSON); !bytes.Equal(again, b[3:]) {
			t.Errorf("device %d: JSON and binary records differ:\n%x\n%x", i, again, b[3:])
		}
	}
	for i, e := range sampleEntries() {
		b := appendEntry(nil, e)
		var got LogEntry
		if err := decodeRecord(b, &got); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if w, g := jsonOf(t, e), jsonOf(t, &got); w != g {
			t.Errorf("entry %d:\n got %s\nwant %s", i, g, w)
		}
	}
	z := zoneRecord{Occupancy: -3, Updated: recT0, Clamped: 1, Anchored: 1 << 50, LastAnchor: -7, Corrected: 2}
	var gz zoneRecord
	if err := decodeRecord(appendZone(nil, &z), &gz); err != nil || jsonOf(t, z) != jsonOf(t, gz) {
		t.Errorf("zone: %+v (%v), want %+v", gz, err, z)
	}
	var gzero zoneRecord
	if err := decodeRecord(appendZone(nil, &zoneRecord{}), &gzero); err != nil || !gzero.Updated.IsZero() {
		t.Errorf("zero zone: %+v (%v)", gzero, err)
	}
	d := doorRecord{In: 1 << 63, Out: 5}
	var gd doorRecord
	if err := decodeRecord(appendDoor(nil, &d), &gd); err != nil || gd != d {
		t.Errorf("door: %+v (%v), want %+v", gd, err, d)
	}
}

// A field added to a stored type must be added to its encoding (zones/record.go) too, or it
// would silently not survive a restart: this counts them.
func TestRecordFieldsCovered(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
	}{
		{deviceState{}, 6}, {bootState{}, 6}, {zoneRecord{}, 6}, {doorRecord{}, 2}, {LogEntry{}, 13}, {DoorDelta{}, 3},
	} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.want {
			t.Errorf("%T has %d fields, its record encoding covers %d: add the new ones to zones/record.go (and this count)", c.v, n, c.want)
		}
	}
}

// A damaged record is an error, never a panic or a silently short record.
func TestDamagedRecordsAreErrors(t *testing.T) {
	dev, _ := appendDevice(nil, sampleDevices()[1])
	ent := appendEntry(nil, sampleEntries()[0])
	for name, decode := range map[string]func([]byte) error{
		"device": func(b []byte) error { var d deviceState; return decodeRecord(b, &d) },
		"entry":  func(b []byte) error { var e LogEntry; return decodeRecord(b, &e) },
	} {
		full := dev
		if name == "entry" {
			full = ent
		}
		for n := 0; n < len(full); n++ {
			if err := decode(full[:n]); err == nil {
				t.Errorf("%s cut to %d of %d bytes decoded without an error", name, n, len(full))
			}
		}
		if err := decode(append(append([]byte(nil), full...), 0)); err == nil {
			t.Errorf("%s with a trailing byte decoded without an error", name)
		}
		// A length far beyond the record.
		if err := decode([]byte{recordV2, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
			t.Errorf("%s with a huge count decoded without an error", name)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range sampleDevices() {
		b, _ := appendDevice(nil, s)
		f.Add(byte(0), b)
		j, _ := json.Marshal(s)
		f.Add(byte(0), j)
	}
	for _, e := range sampleEntries() {
		f.Add(byte(1), appendEntry(nil, e))
	}
	f.Add(byte(2), appendZone(nil, &zoneRecord{Occupancy: 4, Updated: recT0}))
	f.Add(byte(3), appendDoor(nil, &doorRecord{In: 3}))
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		// Whatever decodes encodes again to a record that decodes to the same encoding.
		switch kind % 4 {
		case 0:
			var d deviceState
			if decodeRecord(data, &d) != nil {
				return
			}
			b, err := appendDevice(nil, &d)
			if err != nil {
				return // a vendor state JSON cannot encode (NaN cannot come from JSON; defensive)
			}
			var d2 deviceState
			if err := decodeRecord(b, &d2); err != nil {
				t.Fatalf("re-encoded device does not decode: %v", err)
			}
			if b2, _ := appendDevice(nil, &d2); !bytes.Equal(b, b2) {
				t.Fatalf("device record not stable:\n%x\n%x", b, b2)
			}
		case 1:
			var e LogEntry
			if decodeRecord(data, &e) != nil {
				return
			}
			b := appendEntry(nil, &e)
			var e2 LogEntry
			if err := decodeRecord(b, &e2); err != nil {
				t.Fatalf("re-encoded entry does not decode: %v", err)
			}
			if !bytes.Equal(b, appendEntry(nil, &e2)) {
				t.Fatal("entry record not stable")
			}
		case 2:
			var z zoneRecord
			if decodeRecord(data, &z) != nil {
				return
			}
			var z2 zoneRecord
			if err := decodeRecord(appendZone(nil, &z), &z2); err != nil || !bytes.Equal(appendZone(nil, &z), appendZone(nil, &z2)) {
				t.Fatalf("zone record not stable: %v", err)
			}
		case 3:
			var r doorRecord
			if decodeRecord(data, &r) != nil {
				return
			}
			var r2 doorRecord
			if err := decodeRecord(appendDoor(nil, &r), &r2); err != nil || r2 != r {
				t.Fatalf("door record not stable: %v", err)
			}
		}
	})
}

// rawRecords reads every value of the state and log buckets.
func rawRecords(t *testing.T, path string) (format string, values map[string][][]byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	values = map[string][][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		format = string(tx.Bucket(bucketMeta).Get(keyFormat))
		for _, b := range [][]byte{bucketDevices, bucketZones, bucketDoors, bucketLog, bucketAudit} {
			if err := tx.Bucket(b).ForEach(func(_, v []byte) error {
				values[string(b)] = append(values[string(b)], append([]byte(nil), v...))
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return format, values
}

// A file written by the last version with JSON records (testdata/zones/format1.db, made as
// testdata/zones/format1_gen_test.go.txt says) loads with the same state, is rewritten in
// format 2 on opening, and keeps counting: its devices' boots and sequences still refuse
// a report already counted.
func TestFormat1FixtureMigrates(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "testdata", "zones", "format1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cw.db")
	writeFile(t, path, src)
	if f, vals := rawRecords(t, path); f != formatJSON || len(vals["log"]) == 0 || !isJSON(vals["devices"][0]) {
		t.Fatalf("the fixture is not a format-1 file: format %q, %d log entries", f, len(vals["log"]))
	}

	// Chunks of 2 records, so that each bucket takes several transactions.
	defer func(n int) { migrateChunk = n }(migrateChunk)
	migrateChunk = 2
	h := newHarness(t, path)
	want := map[string]int64{"store": 8, "hall": 6, "floor2": 2, "shop": 3}
	h.expect(want)
	doors := map[string][2]uint64{}
	for _, d := range h.engine.Snapshot().Doors {
		doors[d.ID] = [2]uint64{d.In, d.Out}
	}
	if doors["main"] != [2]uint64{12, 2} || doors["up"] != [2]uint64{4, 0} || doors["shopdoor"] != [2]uint64{3, 0} {
		t.Errorf("door totals after migration: %v", doors)
	}
	replayed, err := Replay(h.store, h.model)
	if err != nil {
		t.Fatal(err)
	}
	for i, z := range h.model.Zones {
		if replayed[i] != h.occupancy()[z.ID] {
			t.Errorf("zone %s: the migrated log replays to %d, the state says %d", z.ID, replayed[i], h.occupancy()[z.ID])
		}
	}
	var audit []*LogEntry
	if err := h.store.Entries("audit", func(e *LogEntry) error { audit = append(audit, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].By != "guard-7" || audit[0].Reason != "head count at 10:02" || audit[0].Value != 6 {
		t.Errorf("audit after migration: %+v", audit)
	}
	// Counted before the migration: a duplicate now. The next one counts.
	if o := h.send(counter("dc-01", "boot-b", 1, line("1", 2, 0))); o != Duplicate {
		t.Errorf("a report counted before the migration, sent again: %v, want duplicate", o)
	}
	if o := h.send(counter("dc-01", "boot-a", 2, line("1", 10, 2))); o != Duplicate {
		t.Errorf("a report of the old boot, sent again: %v, want duplicate", o)
	}
	mustApply(t, h.send(counter("dc-01", "boot-b", 2, line("1", 3, 0))))
	want["hall"], want["store"] = 7, 9
	h.expect(want)
	h.stop()

	f, vals := rawRecords(t, path)
	if f != formatVersion {
		t.Errorf("format after opening: %q, want %q", f, formatVersion)
	}
	for b, vs := range vals {
		for i, v := range vs {
			if isJSON(v) {
				t.Errorf("%s record %d is still JSON: %s", b, i, v)
			}
		}
	}
	h.start()
	h.expect(want)
}

// A migration cut off part-way (some records binary, the file still marked format 1) loads
// and finishes at the next start.
func TestInterruptedMigrationFinishes(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "testdata", "zones", "format1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cw.db")
	writeFile(t, path, src)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Migrate only the devices and the first log entry, as a crash after two chunks would.
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDevices, bucketLog} {
			b := tx.Bucket(name)
			type kv struct{ k, v []byte }
			var puts []kv
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				nv, err := migrateRecord(string(name), v)
				if err != nil {
					return err
				}
				puts = append(puts, kv{append([]byte(nil), k...), nv})
				if string(name) == string(bucketLog) {
					break
				}
			}
			for _, p := range puts {
				if err := b.Put(p.k, p.v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if f, vals := rawRecords(t, path); f != formatJSON || isJSON(vals["log"][0]) || !isJSON(vals["log"][1]) {
		t.Fatalf("the half-migrated file is not as meant: %q", f)
	}
	h := newHarness(t, path)
	h.expect(map[string]int64{"store": 8, "hall": 6, "floor2": 2, "shop": 3})
	h.stop()
	if f, _ := rawRecords(t, path); f != formatVersion {
		t.Errorf("format after the second start: %q", f)
	}
}
