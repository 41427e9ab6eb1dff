package main

// Benchmarks of Vault's shamir package, the reference numbers in docs/benchmarks.md (bench/shamir.ts runs
// `go test -bench . -run '^$'` here). Same workloads as the TypeScript side: 5 shares, threshold 3.

import (
	"crypto/rand"
	"testing"

	"github.com/hashicorp/vault/shamir"
)

func benchSplit(b *testing.B, size int) {
	secret := make([]byte, size)
	rand.Read(secret)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := shamir.Split(secret, 5, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCombine(b *testing.B, size int) {
	secret := make([]byte, size)
	rand.Read(secret)
	shares, err := shamir.Split(secret, 5, 3)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := shamir.Combine(shares[:3]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplit32(b *testing.B)     { benchSplit(b, 32) }
func BenchmarkCombine32(b *testing.B)   { benchCombine(b, 32) }
func BenchmarkSplit1MiB(b *testing.B)   { benchSplit(b, 1<<20) }
func BenchmarkCombine1MiB(b *testing.B) { benchCombine(b, 1<<20) }
