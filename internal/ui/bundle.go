package ui

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// embeddedNamespace is esbuild's name for the files bundle reads: they
// come from the binary's embedded files, never from the disk.
const embeddedNamespace = "skytrail-ui"

// bundle joins the module entry and everything it imports, from files,
// into one minified ES module and its source map, ending with the licence
// notices of the vendored code (vendor/*/*.LEGAL.txt, where its own build
// moved them out of the code). One file is one request:
// loaded module by module, the browser learned of each import only after
// parsing its importer, and even with every module announced up front it
// revalidated twenty-odd files before drawing anything.
func bundle(files fs.FS, entry string) (js, sourceMap []byte, err error) {
	legal, err := legalNotices(files)
	if err != nil {
		return nil, nil, err
	}
	result := api.Build(api.BuildOptions{
		EntryPoints:       []string{entry},
		Bundle:            true,
		Format:            api.FormatESModule,
		Target:            api.ES2022,
		Platform:          api.PlatformBrowser,
		MinifyWhitespace:  true,
		MinifySyntax:      true,
		MinifyIdentifiers: true,
		// The map (served beside the bundle and named in its SourceMap
		// header) lets a browser's developer tools show the sources.
		Sourcemap:     api.SourceMapExternal,
		LegalComments: api.LegalCommentsEndOfFile,
		Footer:        map[string]string{"js": legal},
		Outfile:       "app.js",
		Write:         false,
		LogLevel:      api.LogLevelSilent,
		Plugins:       []api.Plugin{fromFS(files)},
	})
	if len(result.Errors) > 0 {
		msgs := api.FormatMessages(result.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, nil, errors.New(strings.TrimSpace(strings.Join(msgs, "")))
	}
	for _, f := range result.OutputFiles {
		switch path.Ext(f.Path) {
		case ".js":
			js = f.Contents
		case ".map":
			sourceMap = f.Contents
		}
	}
	if js == nil || sourceMap == nil {
		return nil, nil, fmt.Errorf("esbuild wrote %d files, not the bundle and its map", len(result.OutputFiles))
	}
	return js, sourceMap, nil
}

// legalNotices joins the vendored code's licence notices.
func legalNotices(files fs.FS) (string, error) {
	names, err := fs.Glob(files, "vendor/*/*.LEGAL.txt")
	if err != nil {
		return "", err
	}
	var notices []string
	for _, name := range names {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return "", err
		}
		notices = append(notices, strings.TrimSpace(string(b)))
	}
	return strings.Join(notices, "\n"), nil
}

// fromFS resolves and loads every module from files. Only relative imports
// are allowed: the UI has no packages to look up, and a bare name is a
// mistake (or a module the binary does not have) to report, not to search
// the disk for.
func fromFS(files fs.FS) api.Plugin {
	return api.Plugin{Name: "embedded-files", Setup: func(b api.PluginBuild) {
		b.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
			name := args.Path
			if args.Kind != api.ResolveEntryPoint {
				if !strings.HasPrefix(name, "./") && !strings.HasPrefix(name, "../") {
					return api.OnResolveResult{}, fmt.Errorf("%s imports %q: only relative imports of the UI's own files can be bundled", args.Importer, name)
				}
				name = path.Join(path.Dir(args.Importer), name)
			}
			if !fs.ValidPath(name) {
				return api.OnResolveResult{}, fmt.Errorf("%s imports %q, outside static/", args.Importer, args.Path)
			}
			if _, err := fs.Stat(files, name); err != nil {
				return api.OnResolveResult{}, fmt.Errorf("%s imports %q: no such file in static/", args.Importer, args.Path)
			}
			return api.OnResolveResult{Path: name, Namespace: embeddedNamespace}, nil
		})
		b.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: embeddedNamespace}, func(args api.OnLoadArgs) (api.OnLoadResult, error) {
			body, err := fs.ReadFile(files, args.Path)
			if err != nil {
				return api.OnLoadResult{}, err
			}
			contents := string(body)
			return api.OnLoadResult{Contents: &contents, Loader: api.LoaderJS}, nil
		})
	}}
}
