package history

import "sort"

func sortEvents[T any](s []T, key func(T) int64) {
	sort.SliceStable(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
}
