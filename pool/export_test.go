package pool

// Watches reports the contexts the pool watches: registered in all, and
// with unfinished tasks.
func (p *Pool) Watches() (registered, busy int) {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	for _, w := range p.watches {
		if w.live.Load() > 0 {
			busy++
		}
	}
	registered = len(p.watches)
	if w := p.idleWatch; w != nil && p.watches[w.done] != w {
		registered++
	}
	return registered, busy
}
